package connet_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
)

// lbService is a destination's service that greets each connection with
// its id, then holds it open until the other side closes.
type lbService struct {
	id string
	ln net.Listener
}

func newLBService(t *testing.T, id string) *lbService {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	s := &lbService{id: id, ln: ln}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = fmt.Fprintln(conn, id)
				_, _ = io.Copy(io.Discard, conn)
			}()
		}
	}()
	return s
}

// kill stops the service: the destination's dials are refused from now on.
func (s *lbService) kill() { _ = s.ln.Close() }

func (s *lbService) dial(ctx context.Context, _ netip.AddrPort) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", s.ln.Addr().String())
}

// lbFixture is three destinations of one name, each on its own client in
// front of its own service, with the given routes, and a relay.
type lbFixture struct {
	h        *harness
	services []*lbService
	clients  []*connet.Client
}

func newLBFixture(t *testing.T, routes ...connet.Route) *lbFixture {
	h := newHarness(t, with(connet.ServerRelayIngress(connet.RelayIngress{Addr: "127.0.0.1:0", Hostports: []string{"127.0.0.1:0"}})))
	f := &lbFixture{h: h}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for i, route := range routes {
		svc := newLBService(t, fmt.Sprintf("dst-%d", i))
		f.services = append(f.services, svc)
		cl := h.connect("token-d")
		f.clients = append(f.clients, cl)
		dst, err := cl.Destination(ctx, connet.NewDestinationConfig("lb").WithRoute(route))
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = dst.Serve(ctx, svc.dial) }()
	}
	return f
}

// source adds a source with the given load balancing on a new client and
// waits until it has a path to each of the three destinations.
func (f *lbFixture) source(t *testing.T, policy connet.LBPolicy, retry connet.LBRetry, max int) (*connet.Client, *connet.Source) {
	t.Helper()
	cl := f.h.connect("token-s")
	src, err := cl.Source(context.Background(), connet.NewSourceConfig("lb").WithLoadBalancer(policy, retry, max))
	if err != nil {
		t.Fatal(err)
	}
	waitPeers(t, cl, 3)
	return cl, src
}

// open dials the source and reads which destination answered.
func open(t *testing.T, src *connet.Source) (net.Conn, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := src.Dial(ctx)
	if err != nil {
		return nil, "", err
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		_ = conn.Close()
		return nil, "", fmt.Errorf("reading the greeting: %w", err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn, strings.TrimSpace(line), nil
}

// answers opens n connections one after another, closing each, and returns
// who answered.
func answers(t *testing.T, src *connet.Source, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		conn, id, err := open(t, src)
		if err != nil {
			t.Fatalf("connection %d: %v", len(ids), err)
		}
		_ = conn.Close()
		ids = append(ids, id)
	}
	return ids
}

func TestLoadBalancing(t *testing.T) {
	f := newLBFixture(t, connet.RouteAny, connet.RouteAny, connet.RouteAny)

	t.Run("round-robin cycles through all", func(t *testing.T) {
		_, src := f.source(t, connet.LBRoundRobin, connet.LBRetryNever, 0)
		ids := answers(t, src, 9)
		first := ids[:3]
		if s := slices.Sorted(slices.Values(first)); !slices.Equal(s, []string{"dst-0", "dst-1", "dst-2"}) {
			t.Fatalf("first cycle %v, want each destination once", first)
		}
		for i := 3; i < len(ids); i++ {
			if ids[i] != ids[i-3] {
				t.Fatalf("answers %v do not repeat the first cycle", ids)
			}
		}
	})

	t.Run("random reaches all", func(t *testing.T) {
		_, src := f.source(t, connet.LBRandom, connet.LBRetryNever, 0)
		seen := map[string]bool{}
		for i := 0; i < 60 && len(seen) < 3; i++ {
			seen[answers(t, src, 1)[0]] = true
		}
		if len(seen) != 3 {
			t.Fatalf("60 random connections reached only %v", seen)
		}
	})

	t.Run("least-conns spreads long-lived connections", func(t *testing.T) {
		cl, src := f.source(t, connet.LBLeastConns, connet.LBRetryNever, 0)
		count := map[string]int{}
		for range 6 {
			conn, id, err := open(t, src)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			count[id]++
		}
		for _, id := range []string{"dst-0", "dst-1", "dst-2"} {
			if count[id] != 2 {
				t.Fatalf("six open connections spread as %v, want two each", count)
			}
		}
		// Status shows what least-conns compares.
		for _, p := range cl.Status().Sources[0].Peers {
			if p.ActiveConnections != 2 {
				t.Fatalf("status shows %d active connections with peer %s, want 2", p.ActiveConnections, p.ID)
			}
		}
	})

	// From here on one service is dead: its destination refuses every
	// connection. (Which peer is best by RTT varies on loopback;
	// TestDefaultTriesEveryPeer fixes the order with routes instead.)
	dead := f.services[1].id
	f.services[1].kill()

	t.Run("default retry lets a connection fail", func(t *testing.T) {
		_, src := f.source(t, connet.LBRoundRobin, connet.LBRetryNever, 0)
		failed := 0
		for range 6 {
			conn, id, err := open(t, src)
			if err != nil {
				if connet.CodeOf(err) != connet.ErrorDestinationDialFailed {
					t.Fatalf("failure %v, want the destination's dial failure", err)
				}
				failed++
				continue
			}
			_ = conn.Close()
			if id == dead {
				t.Fatal("the dead service answered")
			}
		}
		if failed != 2 {
			t.Fatalf("%d of 6 round-robin connections failed, want the 2 that fell on the dead service", failed)
		}
	})

	for _, retry := range []struct {
		name  string
		retry connet.LBRetry
	}{{"count", connet.LBRetryCount}, {"timed", connet.LBRetryTimed}, {"all", connet.LBRetryAll}} {
		t.Run("retry "+retry.name+" fails nothing", func(t *testing.T) {
			_, src := f.source(t, connet.LBRoundRobin, retry.retry, 0)
			for _, id := range answers(t, src, 6) {
				if id == dead {
					t.Fatal("the dead service answered")
				}
			}
		})
	}

}

// TestDefaultTriesEveryPeer: without lb options a source tries its peers
// in path order, over direct and relayed paths alike. The only direct peer
// comes first and refuses; the relayed ones answer.
func TestDefaultTriesEveryPeer(t *testing.T) {
	f := newLBFixture(t, connet.RouteDirect, connet.RouteRelay, connet.RouteRelay)
	f.services[0].kill()
	cl, src := f.source(t, connet.LBDefault, connet.LBRetryNever, 0)
	for _, id := range answers(t, src, 6) {
		if id == "dst-0" {
			t.Fatal("the dead service answered")
		}
	}
	st := f.clients[0].Status()
	if len(st.Destinations) != 1 || !strings.Contains(st.Destinations[0].LastError, "refused") {
		t.Fatalf("the direct destination was not tried first: its status %+v", st.Destinations)
	}
	for _, p := range cl.Status().Sources[0].Peers {
		if len(p.Paths) == 0 {
			t.Fatalf("peer %s without paths", p.ID)
		}
		if direct := p.Paths[0].Kind != "relay"; direct != (p.Route == "direct") {
			t.Fatalf("peer %s with route %s shows paths %+v", p.ID, p.Route, p.Paths)
		}
	}
}

func TestLoadBalancerOptionsChecked(t *testing.T) {
	h := newHarness(t)
	cl := h.connect("token-s")
	for _, cfg := range []connet.SourceConfig{
		connet.NewSourceConfig("a").WithLoadBalancer("fastest", "", 0),
		connet.NewSourceConfig("b").WithLoadBalancer(connet.LBRandom, "always", 0),
		connet.NewSourceConfig("c").WithLoadBalancer(connet.LBRandom, connet.LBRetryCount, -1),
	} {
		if _, err := cl.Source(context.Background(), cfg); err == nil || errors.Is(err, connet.ErrClosed) {
			t.Errorf("Source(%+v) = %v, want a refusal", cfg, err)
		}
	}
}
