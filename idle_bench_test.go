package connet_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/forward"
)

// idleConns is how many connections BenchmarkIdleConnections holds open.
const idleConns = 2000

// BenchmarkIdleConnections measures what an idle tunnelled connection
// costs in memory, both clients (and, relayed, the relay) in this process:
// it opens idleConns connections through a TCP source and a destination
// that dials a TCP service, moves a byte each way on every one, and reports
// per connection the live heap, goroutine stacks and goroutines it holds
// once idle. "raw" is the same TCP connections without a tunnel: the part
// of the figures that the test's own sockets cost.
func BenchmarkIdleConnections(b *testing.B) {
	for _, tc := range []struct {
		name  string
		route connet.Route
	}{{"raw", ""}, {"direct", connet.RouteDirect}, {"relay", connet.RouteRelay}} {
		b.Run(tc.name, func(b *testing.B) {
			// One round takes seconds: the default benchtime runs it once.
			for b.Loop() {
				service, accepted := holdingService(b)
				addr := service
				if tc.name != "raw" {
					addr = idleTunnel(b, tc.route, service, accepted)
				}
				before := memFigures()
				conns := dialAll(b, addr, accepted)
				pingAll(b, conns)
				after := memFigures()
				for i, name := range memNames {
					b.ReportMetric((after[i]-before[i])/idleConns, name)
				}
				for _, c := range conns {
					_ = c[0].Close()
					_ = c[1].Close()
				}
			}
		})
	}
}

// memNames are the units of what memFigures returns, per connection.
var memNames = []string{"heap-B/conn", "stack-B/conn", "goroutines/conn"}

// memFigures collects garbage and returns the live heap, goroutine stacks
// and goroutines.
func memFigures() []float64 {
	runtime.GC()
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/sched/goroutines:goroutines"},
	}
	metrics.Read(s)
	return []float64{float64(s[0].Value.Uint64()), float64(s[1].Value.Uint64()), float64(s[2].Value.Uint64())}
}

// holdingService listens on loopback and sends every connection it
// accepts to the returned channel; the benchmark holds them without a
// goroutine each, so that they cost no more than the sockets.
func holdingService(b *testing.B) (string, <-chan net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	accepted := make(chan net.Conn, idleConns)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	b.Cleanup(func() {
		_ = ln.Close()
		for {
			select {
			case c := <-accepted:
				_ = c.Close()
			default:
				return
			}
		}
	})
	return ln.Addr().String(), accepted
}

// idleTunnel runs a server (with a relay), a destination client whose
// endpoint dials service and a source client with a TCP source, and
// returns the source's address once a connection goes through (taking
// its end from accepted, unless nil).
func idleTunnel(b *testing.B, route connet.Route, service string, accepted <-chan net.Conn) string {
	h := newHarness(b, with(connet.ServerRelayIngress(connet.RelayIngress{
		Addr: "127.0.0.1:0", Hostports: []string{"127.0.0.1:0"}, MaxClientStreams: 2 * idleConns,
		// All are dialed at once: none may be refused for waiting.
		MaxPendingStreams: idleConns,
	})))
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	dc := h.connect("token-d")
	sc := h.connect("token-s")
	dst, err := dc.Destination(ctx, connet.NewDestinationConfig("svc").WithRoute(route))
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		_ = dst.Serve(ctx, func(ctx context.Context, _ netip.AddrPort) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", service)
		})
	}()
	src, err := sc.Source(ctx, connet.NewSourceConfig("svc").WithRoute(route))
	if err != nil {
		b.Fatal(err)
	}
	dialEventually(b, src).Close()
	// The service's end of that first connection is not one of those
	// measured (a service that answers on its own passes no accepted).
	if accepted != nil {
		select {
		case c := <-accepted:
			_ = c.Close()
		case <-time.After(time.Minute):
			b.Fatal("the first connection never reached the service")
		}
	}
	ep, err := forward.NewSource(config.SourceSettings{Name: "svc", URL: &url.URL{Scheme: "tcp", Host: "127.0.0.1:0"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = ep.Serve(ctx, src.DialEarly) }()
	return ep.Addr().String()
}

// dialAll opens idleConns connections to addr and returns them paired with
// the service's ends, once the service has accepted every one.
func dialAll(b *testing.B, addr string, accepted <-chan net.Conn) [][2]net.Conn {
	conns := make([][2]net.Conn, idleConns)
	b.Cleanup(func() {
		for _, p := range conns {
			for _, c := range p {
				if c != nil {
					_ = c.Close()
				}
			}
		}
	})
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatalf("dial %d: %v", i, err)
		}
		conns[i][0] = c
	}
	timeout := time.After(time.Minute)
	for i := range conns {
		select {
		case c := <-accepted:
			conns[i][1] = c
		case <-timeout:
			b.Fatalf("the service accepted %d of %d connections", i, len(conns))
		}
	}
	return conns
}

// pingAll moves a byte from every client end to a service end and back:
// the service's ends come in accept order, not dial order, so each end
// writes and then reads what arrived on it.
func pingAll(b *testing.B, conns [][2]net.Conn) {
	one := []byte{1}
	for _, p := range conns {
		for _, c := range p {
			if _, err := c.Write(one); err != nil {
				b.Fatal(err)
			}
		}
	}
	buf := make([]byte, 1)
	for _, p := range conns {
		for _, c := range p {
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}
