package balance

import (
	"context"
	"math/rand/v2"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/netpath"
)

// fakePath is a path with a fixed kind, RTT and health.
type fakePath struct {
	kind  netpath.Kind
	rtt   time.Duration
	stale bool
}

func (f fakePath) Kind() netpath.Kind    { return f.kind }
func (f fakePath) RemoteAddr() net.Addr  { return &net.UDPAddr{} }
func (f fakePath) RTT() time.Duration    { return f.rtt }
func (f fakePath) Done() <-chan struct{} { return nil }
func (f fakePath) Close() error          { return nil }
func (f fakePath) Stale() bool           { return f.stale }
func (f fakePath) OpenStream(context.Context, string) (netpath.Stream, error) {
	panic("not used")
}

func id(b byte) identity.ID {
	var i identity.ID
	i[0] = b
	return i
}

func target(b byte, active int64, paths ...fakePath) Target {
	t := Target{Peer: id(b), Active: active}
	for _, p := range paths {
		t.Paths = append(t.Paths, p)
	}
	return t
}

func peers(ts []Target) []byte {
	out := make([]byte, len(ts))
	for i, t := range ts {
		out[i] = t.Peer[0]
	}
	return out
}

var (
	direct10 = fakePath{kind: netpath.DirectOutgoing, rtt: 10 * time.Millisecond}
	direct30 = fakePath{kind: netpath.DirectIncoming, rtt: 30 * time.Millisecond}
	relay5   = fakePath{kind: netpath.Relay, rtt: 5 * time.Millisecond}
	stale1   = fakePath{kind: netpath.DirectOutgoing, rtt: time.Millisecond, stale: true}
)

func TestOrderByLatency(t *testing.T) {
	ts := []Target{
		target(1, 0, relay5),           // relayed only: after every direct peer, whatever its RTT
		target(2, 0, direct30, relay5), // direct, slower
		target(3, 0, direct10),         // direct, fastest
		target(4, 0, stale1),           // silent: last
		target(5, 0),                   // no path: dropped
	}
	for _, p := range []Policy{Default, LeastLatency} {
		if got := peers(Order(p, ts, 0, nil)); !slices.Equal(got, []byte{3, 2, 1, 4}) {
			t.Errorf("%q: order %v, want [3 2 1 4]", p, got)
		}
	}
}

func TestOrderLeastConns(t *testing.T) {
	ts := []Target{
		target(1, 5, direct10),
		target(2, 1, relay5),
		target(3, 1, direct30),
		target(4, 0, stale1), // fewest connections, but silent
	}
	// Fewest connections first; a tie goes to the better path.
	if got := peers(Order(LeastConns, ts, 0, nil)); !slices.Equal(got, []byte{3, 2, 1, 4}) {
		t.Errorf("order %v, want [3 2 1 4]", got)
	}
}

func TestOrderRoundRobin(t *testing.T) {
	ts := []Target{target(3, 0, relay5), target(1, 0, direct30), target(2, 0, direct10)}
	var firsts []byte
	for turn := range uint64(6) {
		got := peers(Order(RoundRobin, ts, turn, nil))
		if len(got) != 3 {
			t.Fatalf("turn %d: %v", turn, got)
		}
		firsts = append(firsts, got[0])
		// The rest follow in the same cycle, so a retry takes the next
		// peer in turn.
		if want := []byte{got[0], got[0]%3 + 1, (got[0]+1)%3 + 1}; !slices.Equal(got, want) {
			t.Errorf("turn %d: %v, want %v", turn, got, want)
		}
	}
	if !slices.Equal(firsts, []byte{1, 2, 3, 1, 2, 3}) {
		t.Errorf("first peers by turn %v, want each in turn", firsts)
	}
}

func TestOrderRandomReachesAll(t *testing.T) {
	ts := []Target{target(1, 0, direct10), target(2, 0, direct10), target(3, 0, relay5)}
	rnd := rand.New(rand.NewPCG(1, 2))
	if got := Order(Random, ts, 0, nil); len(got) != 3 {
		t.Fatalf("order with the runtime's generator dropped a peer: %v", peers(got))
	}
	seen := map[byte]int{}
	for range 300 {
		got := Order(Random, ts, 0, rnd)
		if len(got) != 3 {
			t.Fatalf("order dropped a peer: %v", peers(got))
		}
		seen[got[0].Peer[0]]++
	}
	for _, p := range []byte{1, 2, 3} {
		if seen[p] < 50 { // each should be first about 100 times
			t.Errorf("peer %d first %d times in 300: %v", p, seen[p], seen)
		}
	}
}

func TestRetry(t *testing.T) {
	cases := []struct {
		policy  Policy
		retry   Retry
		n, want int
		budget  time.Duration
	}{
		{Default, Retry{}, 3, 3, 0},                 // no lb options: every peer
		{RoundRobin, Retry{}, 3, 1, 0},              // a policy without retry: never
		{RoundRobin, Retry{Policy: Count}, 3, 2, 0}, // count defaults to 2
		{RoundRobin, Retry{Policy: Count, Max: 5}, 3, 3, 0},
		{Random, Retry{Policy: All}, 4, 4, 0},
		{LeastConns, Retry{Policy: Timed}, 4, 4, time.Second},
		{LeastConns, Retry{Policy: Timed, Max: 250}, 4, 4, 250 * time.Millisecond},
		{Default, Retry{Policy: Count, Max: 1}, 3, 1, 0}, // retry alone still applies
		{RoundRobin, Retry{}, 0, 0, 0},
	}
	for _, c := range cases {
		r := Effective(c.policy, c.retry)
		if got := r.Attempts(c.n); got != c.want {
			t.Errorf("%q %+v: attempts of %d = %d, want %d", c.policy, c.retry, c.n, got, c.want)
		}
		if got := r.Budget(); got != c.budget {
			t.Errorf("%q %+v: budget %v, want %v", c.policy, c.retry, got, c.budget)
		}
	}
}

func TestParse(t *testing.T) {
	for _, s := range []string{"", "least-latency", "least-conns", "round-robin", "random"} {
		if _, err := ParsePolicy(s); err != nil {
			t.Errorf("ParsePolicy(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "count", "timed", "all"} {
		if _, err := ParseRetry(s); err != nil {
			t.Errorf("ParseRetry(%q): %v", s, err)
		}
	}
	if _, err := ParsePolicy("fastest"); err == nil {
		t.Error("ParsePolicy accepted an unknown policy")
	}
	if _, err := ParseRetry("always"); err == nil {
		t.Error("ParseRetry accepted an unknown retry")
	}
}
