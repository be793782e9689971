package relay

import "github.com/p2pconnet/connet/internal/quota"

// Quotas bound what one client may hold at a relay, so that a token holder
// who opens streams without end cannot take the relay from everyone else.
// A stream beyond a quota is refused with a LIMIT error; the client's other
// streams go on.
type Quotas struct {
	// Streams is how many relayed connections a client may have open at
	// once, as source or destination.
	Streams int
	// Pending is how many of a client's new streams may wait at once for
	// their header or for the peer's grant to pair.
	Pending int
}

// Default quotas. A relayed connection costs under 20 KiB while idle (two
// streams' state, two small buffers, two goroutines: measured with both
// clients in the process), so 4096 idle ones per client stay under 80 MiB;
// what stalled ones hold is bounded apart (memory.go). A
// waiting stream costs about as much, for at most a round trip to the
// other client when all is well (see quota.DefaultMaxPending).
const (
	DefaultMaxStreams = 4096
	DefaultMaxPending = quota.DefaultMaxPending
)

// withDefaults fills in the default for every quota left at zero.
func (q Quotas) withDefaults() Quotas {
	if q.Streams <= 0 {
		q.Streams = DefaultMaxStreams
	}
	q.Pending = quota.Max(q.Pending)
	return q
}
