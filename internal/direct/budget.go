package direct

import (
	"github.com/p2pconnet/connet/internal/restrict"
	"net/netip"
	"sync"
	"time"
)

// The probe budget bounds the punch probes a client sends towards one
// network over time, whatever the peers there and however often they come
// back: a bucket per target that holds probeBurst probes and fills up
// again over probeRefill. A punch that finds its bucket empty sends no
// more probes until it refills; it goes on waiting for the peer's.
//
// The bucket is the target's address (an IPv4 address, an IPv6 /64), not
// the peer's identity or punch secret: a client makes a fresh identity and
// secret every time it starts, and anyone with a token can do so at will,
// so a budget keyed by them would start afresh with every reconnect. The
// address is where the control server saw the peer's UDP packets come
// from: a peer cannot pick it, nor change it cheaply (an IPv6 host has a
// whole /64, hence the prefix), and it is where the probes land.
const (
	// probeBurst is one full attempt of the easy side.
	probeBurst = punchSprayMax
	// probeRefill lets a full attempt follow each cool-down: the probes
	// of one go out early in its window, the next starts punchCooldown
	// after it started.
	probeRefill = punchCooldown - punchWindow
	// maxProbeTargets bounds the buckets kept. Full ones are dropped
	// (they hold nothing a new bucket would not); with this many not
	// full, probes to a new target wait for one to be.
	maxProbeTargets = 1024
)

// probeBudget is the buckets of the targets probed lately.
type probeBudget struct {
	mu      sync.Mutex
	buckets map[netip.Prefix]*probeBucket
}

// probeBucket is what is left of a target's budget at a time.
type probeBucket struct {
	left float64
	at   time.Time
}

// take spends one probe towards to, if its budget has one left.
func (b *probeBudget) take(to netip.Addr, now time.Time) bool {
	key := restrict.HostPrefix(to)
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.buckets[key]
	if bk == nil {
		if b.buckets == nil {
			b.buckets = map[netip.Prefix]*probeBucket{}
		}
		if len(b.buckets) >= maxProbeTargets && !b.dropFullLocked(now) {
			return false
		}
		bk = &probeBucket{left: probeBurst, at: now}
		b.buckets[key] = bk
	}
	bk.refill(now)
	if bk.left < 1 {
		return false
	}
	bk.left--
	return true
}

// dropFullLocked forgets the buckets that have filled up again, and tells
// whether there is room for a new one now.
func (b *probeBudget) dropFullLocked(now time.Time) bool {
	for key, bk := range b.buckets {
		if bk.refill(now); bk.left >= probeBurst {
			delete(b.buckets, key)
		}
	}
	return len(b.buckets) < maxProbeTargets
}

// refill adds what came back since the last time, up to probeBurst.
func (bk *probeBucket) refill(now time.Time) {
	if d := now.Sub(bk.at); d > 0 {
		bk.left = min(probeBurst, bk.left+float64(probeBurst)*d.Seconds()/probeRefill.Seconds())
		bk.at = now
	}
}
