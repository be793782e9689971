// Package quota bounds how many new streams one party may have waiting at
// once, so that a party who opens streams and never finishes them cannot
// take a server from everyone else. The relay holds each client to it
// (streams waiting for their header or pairing), and a client's
// destinations hold each peer to it (streams waiting for their request or
// the service's dial). A stream beyond the quota is refused at once; the
// party's other streams, and other parties, go on.
package quota

import (
	"sync"
	"sync/atomic"
)

// DefaultMaxPending is how many streams one party may have waiting by
// default. A waiting stream costs a goroutine and a few KiB of buffers for
// at most a header timeout; the quota must absorb the bursts real clients
// make (a browser page opening dozens of connections at once, many pages
// at a time), which 64 did not at the relay: a burst past it was refused.
// 1024 waiting streams are ~10 MiB per party.
const DefaultMaxPending = 1024

// Pending counts one party's waiting streams. The zero value holds none.
type Pending struct {
	n atomic.Int64
}

// Take counts one more waiting stream unless max are waiting already.
// Call it in the order the party opened its streams, so the quota holds
// whatever order the goroutines serving them run in. release ends the
// wait; calls after the first do nothing, so every way a stream leaves the
// wait may call it.
func (p *Pending) Take(max int) (release func(), ok bool) {
	if p.n.Add(1) > int64(max) {
		p.n.Add(-1)
		return nil, false
	}
	return sync.OnceFunc(func() { p.n.Add(-1) }), true
}

// Held is how many streams are waiting now.
func (p *Pending) Held() int { return int(p.n.Load()) }

// Max returns max, or DefaultMaxPending when max is not positive (a quota
// left at zero in a config).
func Max(max int) int {
	if max <= 0 {
		return DefaultMaxPending
	}
	return max
}
