package netpath

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"
)

// plainPath is a Path that can tell neither staleness nor retirement.
type plainPath struct {
	name string
	kind Kind
	rtt  time.Duration
	done chan struct{}
}

func (p *plainPath) Kind() Kind            { return p.kind }
func (p *plainPath) RemoteAddr() net.Addr  { return &net.UDPAddr{} }
func (p *plainPath) RTT() time.Duration    { return p.rtt }
func (p *plainPath) Done() <-chan struct{} { return p.done }
func (p *plainPath) Close() error          { return nil }
func (p *plainPath) OpenStream(context.Context, string) (Stream, error) {
	return nil, net.ErrClosed
}

// fakePath is a path that can also tell whether it went silent or was
// retired, as a QUIC path can.
type fakePath struct {
	plainPath
	stale, retired bool
}

func (p *fakePath) Stale() bool   { return p.stale }
func (p *fakePath) Retired() bool { return p.retired }

// path makes a live fakePath.
func path(name string, kind Kind, rtt time.Duration) *fakePath {
	return &fakePath{plainPath: plainPath{name: name, kind: kind, rtt: rtt, done: make(chan struct{})}}
}

func (p *fakePath) silent() *fakePath { p.stale = true; return p }
func (p *fakePath) retire() *fakePath { p.retired = true; return p }
func (p *fakePath) closed() *fakePath { close(p.done); return p }

// names lists the names of fakePaths, in order.
func names(paths []Path) []string {
	out := []string{}
	for _, p := range paths {
		out = append(out, p.(*fakePath).name)
	}
	return out
}

func TestBetter(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		name string
		a, b Path
		want int // the sign of Better(a, b)
	}{
		{"healthy before stale", path("a", Relay, 90*ms), path("b", DirectOutgoing, ms).silent(), -1},
		{"stale after healthy", path("a", DirectOutgoing, ms).silent(), path("b", Relay, 90*ms), 1},
		{"direct before relayed", path("a", DirectIncoming, 90*ms), path("b", Relay, ms), -1},
		{"relayed after direct", path("a", RelayTCP, ms), path("b", DirectOutgoing, 90*ms), 1},
		{"both direct: lower RTT first", path("a", DirectOutgoing, 10*ms), path("b", DirectIncoming, 20*ms), -1},
		{"both relayed: higher RTT last", path("a", Relay, 30*ms), path("b", RelayTCP, 20*ms), 1},
		{"both stale: direct first", path("a", Relay, ms).silent(), path("b", DirectOutgoing, 90*ms).silent(), 1},
		{"equal", path("a", Relay, 5*ms), path("b", RelayTCP, 5*ms), 0},
		{"a path that cannot tell is healthy", &plainPath{kind: Relay, rtt: 90 * ms}, path("b", Relay, ms).silent(), -1},
	} {
		got := Better(c.a, c.b)
		if sign(got) != c.want {
			t.Errorf("%s: Better = %d, want sign %d", c.name, got, c.want)
		}
	}
}

func sign(n int) int { return min(max(n, -1), 1) }

func TestSort(t *testing.T) {
	ms := time.Millisecond
	paths := []Path{
		path("stale direct", DirectOutgoing, ms).silent(),
		path("slow relay", Relay, 80*ms),
		path("fast relay", RelayTCP, 20*ms),
		path("slow direct", DirectIncoming, 60*ms),
		path("fast direct", DirectOutgoing, 5*ms),
		path("stale relay", Relay, ms).silent(),
		path("tied relay", Relay, 20*ms),
	}
	Sort(paths)
	want := []string{"fast direct", "slow direct", "fast relay", "tied relay", "slow relay", "stale direct", "stale relay"}
	if got := names(paths); !slices.Equal(got, want) {
		t.Errorf("sorted %v, want %v (ties keep their order)", got, want)
	}
}

func TestLiveUsableStale(t *testing.T) {
	for _, c := range []struct {
		name                string
		p                   Path
		live, usable, stale bool
	}{
		{"fresh", path("", DirectOutgoing, 0), true, true, false},
		{"silent", path("", DirectOutgoing, 0).silent(), true, true, true},
		{"retired", path("", DirectIncoming, 0).retire(), true, false, false},
		{"closed", path("", Relay, 0).closed(), false, false, false},
		{"closed and silent", path("", Relay, 0).closed().silent(), false, false, true},
		{"cannot tell", &plainPath{kind: Relay, done: make(chan struct{})}, true, true, false},
	} {
		if got := Live(c.p); got != c.live {
			t.Errorf("%s: Live = %v, want %v", c.name, got, c.live)
		}
		if got := Usable(c.p); got != c.usable {
			t.Errorf("%s: Usable = %v, want %v", c.name, got, c.usable)
		}
		if got := Stale(c.p); got != c.stale {
			t.Errorf("%s: Stale = %v, want %v", c.name, got, c.stale)
		}
	}
}
