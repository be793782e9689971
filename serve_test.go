package connet_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
)

// TestServeOwnsItsGoroutines: when Destination.Serve returns, the
// goroutines it started for the connections it forwarded (each forward,
// each splice and its two copies) have returned too, not merely been told
// to: the stacks are read once, right after Serve returns, with no retry
// that would let a straggler finish. The connection it forwarded is cut at
// both ends, as the README says. Direct and relayed.
func TestServeOwnsItsGoroutines(t *testing.T) {
	for _, route := range []connet.Route{connet.RouteDirect, connet.RouteRelay} {
		t.Run(string(route), func(t *testing.T) {
			var extra []serverOpt
			if route == connet.RouteRelay {
				extra = append(extra, with(connet.ServerRelayIngress(connet.RelayIngress{Addr: "127.0.0.1:0", Hostports: []string{"127.0.0.1:0"}})))
			}
			h := newHarness(t, extra...)
			ctx := context.Background()
			dst, err := h.connect("token-d").Destination(ctx, connet.NewDestinationConfig("svc").WithRoute(route))
			if err != nil {
				t.Fatal(err)
			}
			src, err := h.connect("token-s").Source(ctx, connet.NewSourceConfig("svc").WithRoute(route))
			if err != nil {
				t.Fatal(err)
			}
			// The service's end of each connection, held open: only Serve's
			// return can end the splice.
			services := make(chan net.Conn, 4)
			t.Cleanup(func() {
				close(services)
				for c := range services {
					_ = c.Close()
				}
			})
			serveCtx, stop := context.WithCancel(ctx)
			defer stop()
			served := make(chan error, 1)
			go func() {
				served <- dst.Serve(serveCtx, func(context.Context, netip.AddrPort) (net.Conn, error) {
					a, b := net.Pipe()
					services <- b
					return a, nil
				})
			}()
			conn := dialEventually(t, src)
			defer conn.Close()
			if _, err := conn.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			service := <-services
			_ = service.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(service, make([]byte, 1)); err != nil {
				t.Fatalf("the service read nothing: %v", err)
			}

			stop()
			if err := <-served; !errors.Is(err, context.Canceled) {
				t.Fatalf("Serve returned %v, want context.Canceled", err)
			}
			if left := goroutines(startedByServe); left != "" {
				t.Fatalf("Serve returned while goroutines it started still ran:\n%s", left)
			}
			if _, err := service.Read(make([]byte, 1)); err == nil {
				t.Fatal("the service's end of the connection is still open after Serve returned")
			}
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, io.EOF) {
				t.Fatalf("the source read %v after Serve returned, want the connection reset", err)
			}
		})
	}
}

// startedByServe tells whether a goroutine's stack is one Serve started:
// a forward, a splice of its Splices, or a copy of a splice between a
// tracked connection and the service's end (a net.Pipe here; the relay
// server's splices copy between other ends).
func startedByServe(stack string) bool {
	return strings.Contains(stack, "internal/endpoints.(*Endpoint).forward") ||
		strings.Contains(stack, "internal/tunnel.(*Splices).Go") ||
		strings.Contains(stack, "internal/tunnel.(*splice)") &&
			(strings.Contains(stack, "internal/endpoints.(*Conn)") || strings.Contains(stack, "net.(*pipe)"))
}

// goroutines returns the stacks of the goroutines that match, "" when
// none does.
func goroutines(match func(stack string) bool) string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if match(g) {
			found = append(found, g)
		}
	}
	return strings.Join(found, "\n\n")
}
