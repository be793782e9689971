package relay

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
// other client when all is well; the pending quota must absorb the bursts
// real clients make (a browser page opening dozens of connections at
// once, many pages at a time), which 64 did not: a burst past it was
// refused. 1024 waiting streams are ~10 MiB per client.
const (
	DefaultMaxStreams = 4096
	DefaultMaxPending = 1024
)

// withDefaults fills in the default for every quota left at zero.
func (q Quotas) withDefaults() Quotas {
	if q.Streams <= 0 {
		q.Streams = DefaultMaxStreams
	}
	if q.Pending <= 0 {
		q.Pending = DefaultMaxPending
	}
	return q
}
