package peer

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/netpath"
)

func testInfo(b byte, endpoints ...Endpoint) Info {
	return Info{
		ID:         identity.ID{b},
		Candidates: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:19192")},
		Endpoints:  endpoints,
	}
}

func TestRegistryLifecycle(t *testing.T) {
	started := make(chan *Peer, 4)
	r := NewRegistry(time.Hour, func(p *Peer) {
		started <- p
		<-p.Gone()
	})
	defer r.Close()
	web := Endpoint{Name: "web", Role: Destination, Route: netpath.RouteAny}

	r.Apply([]Info{testInfo(1, web)})
	p := <-started
	if got := r.WithEndpoint("web", Destination); len(got) != 1 || got[0] != p {
		t.Fatalf("WithEndpoint: %v", got)
	}
	if r.WithEndpoint("web", Source) != nil {
		t.Fatal("a destination was listed as a source")
	}

	// Unannounced: still known (its paths stay usable) but not announced,
	// and not forgotten before the linger period.
	r.Apply(nil)
	st, _ := p.State()
	if st.Announced {
		t.Fatal("peer still announced after the server dropped it")
	}
	select {
	case <-p.Gone():
		t.Fatal("peer forgotten before its linger period")
	default:
	}
	// Announced again: the same peer, no second maintainer.
	r.Apply([]Info{testInfo(1, web)})
	if st, _ := p.State(); !st.Announced {
		t.Fatal("peer not announced again")
	}
	select {
	case <-started:
		t.Fatal("a second maintainer started for the same peer")
	default:
	}
}

func TestRegistryForgetsAfterLinger(t *testing.T) {
	r := NewRegistry(time.Millisecond, func(p *Peer) { <-p.Gone() })
	defer r.Close()
	r.Apply([]Info{testInfo(2)})
	p := r.Get(identity.ID{2})
	r.Apply(nil)
	select {
	case <-p.Gone():
	case <-time.After(10 * time.Second):
		t.Fatal("peer never forgotten")
	}
	if r.Get(identity.ID{2}) != nil {
		t.Fatal("forgotten peer still in the registry")
	}
}

func TestKnownWaitsForAnnouncement(t *testing.T) {
	r := NewRegistry(time.Hour, func(p *Peer) { <-p.Gone() })
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan bool)
	go func() { done <- r.Known(ctx, identity.ID{3}) }()
	r.Apply([]Info{testInfo(3)})
	if !<-done {
		t.Fatal("Known did not see the announcement it waited for")
	}
	short, cancel2 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel2()
	if r.Known(short, identity.ID{4}) {
		t.Fatal("Known accepted a peer never announced")
	}
}

// fakePath is a path that ends only when closed.
type fakePath struct {
	netpath.Path
	done chan struct{}
}

func (f *fakePath) Done() <-chan struct{} { return f.done }
func (f *fakePath) Close() error {
	select {
	case <-f.done:
	default:
		close(f.done)
	}
	return nil
}

// Close waits for the maintain goroutines and the path watchers, and
// closes the paths; a path added afterwards is closed at once.
func TestRegistryCloseWaitsForItsGoroutines(t *testing.T) {
	maintaining := make(chan struct{})
	var ended bool
	r := NewRegistry(time.Hour, func(p *Peer) {
		close(maintaining)
		<-p.Gone()
		time.Sleep(20 * time.Millisecond) // a slow maintainer is still waited for
		ended = true
	})
	r.Apply([]Info{testInfo(5)})
	<-maintaining
	p := r.Get(identity.ID{5})
	fp := &fakePath{done: make(chan struct{})}
	p.AddPath(fp)
	r.Close()
	if !ended {
		t.Fatal("Close returned before maintain ended")
	}
	select {
	case <-fp.done:
	default:
		t.Fatal("Close left the peer's path open")
	}
	if st, _ := p.State(); len(st.Paths) != 0 {
		t.Fatalf("paths after Close: %v", st.Paths)
	}
	late := &fakePath{done: make(chan struct{})}
	p.AddPath(late)
	select {
	case <-late.done:
	default:
		t.Fatal("a path added after Close stayed open")
	}
	r.Apply([]Info{testInfo(6)})
	if r.Get(identity.ID{6}) != nil {
		t.Fatal("a peer was added after Close")
	}
}
