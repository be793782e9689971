package connet_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/forward"
)

// resetRig is a tcp:// source endpoint in front of a destination that
// serves a local TCP service: clients dial addr, the service's side of each
// connection arrives on accepted.
type resetRig struct {
	addr     string
	accepted chan *net.TCPConn
	// dc and sc are the destination's and the source's clients.
	dc, sc *connet.Client
}

func newResetRig(t *testing.T, route connet.Route, enc connet.RelayEncryption) *resetRig {
	t.Helper()
	var extra []serverOpt
	if route == connet.RouteRelay {
		extra = append(extra, with(connet.ServerRelayIngress(connet.RelayIngress{Addr: "127.0.0.1:0", Hostports: []string{"127.0.0.1:0"}})))
	}
	h := newHarness(t, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dc := h.connect("token-d")
	sc := h.connect("token-s")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	rig := &resetRig{accepted: make(chan *net.TCPConn, 4), dc: dc, sc: sc}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rig.accepted <- c.(*net.TCPConn)
		}
	}()

	dcfg := connet.NewDestinationConfig("svc").WithRoute(route)
	dcfg.RelayEncryptions = []connet.RelayEncryption{enc}
	dst, err := dc.Destination(ctx, dcfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = dst.Serve(ctx, func(ctx context.Context, _ netip.AddrPort) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", ln.Addr().String())
		})
	}()
	scfg := connet.NewSourceConfig("svc").WithRoute(route)
	scfg.RelayEncryptions = []connet.RelayEncryption{enc}
	src, err := sc.Source(ctx, scfg)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the source reaches the destination; the service's end of
	// this first connection is dropped.
	_ = dialEventually(t, src).Close()
	_ = rig.service(t).Close()

	es, err := forward.NewSource(config.SourceSettings{Name: "svc", URL: &url.URL{Scheme: "tcp", Host: "127.0.0.1:0"}}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = es.Serve(ctx, src.DialEarly)
	}()
	t.Cleanup(func() { cancel(); <-served })
	rig.addr = es.Addr().String()
	return rig
}

func (r *resetRig) service(t *testing.T) *net.TCPConn {
	t.Helper()
	select {
	case c := <-r.accepted:
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(15 * time.Second))
		return c
	case <-time.After(15 * time.Second):
		t.Fatal("the service got no connection")
		return nil
	}
}

// connect opens a client connection through the tunnel and returns both
// ends once a first message went through.
func (r *resetRig) connect(t *testing.T) (client, service *net.TCPConn) {
	t.Helper()
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	client = c.(*net.TCPConn)
	t.Cleanup(func() { _ = client.Close() })
	_ = client.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	service = r.service(t)
	buf := make([]byte, len("hello"))
	if _, err := io.ReadFull(service, buf); err != nil {
		t.Fatalf("service read: %v", err)
	}
	return client, service
}

// TestTunnelErrorsReachApplications: when one end of a tunnelled
// connection breaks, the application at the other end gets a TCP reset,
// not a FIN that would pass a cut transfer off as complete; a clean end
// stays a FIN with half-close. Direct, and relayed with each encryption.
func TestTunnelErrorsReachApplications(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route connet.Route
		enc   connet.RelayEncryption
	}{
		{"direct", connet.RouteDirect, connet.TLSEncryption},
		{"relay-none", connet.RouteRelay, connet.NoEncryption},
		{"relay-tls", connet.RouteRelay, connet.TLSEncryption},
		{"relay-dhxcp", connet.RouteRelay, connet.DHXCPEncryption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig := newResetRig(t, tc.route, tc.enc)
			t.Run("service resets", func(t *testing.T) {
				client, service := rig.connect(t)
				_ = service.SetLinger(0)
				_ = service.Close()
				wantConnReset(t, client)
			})
			t.Run("client resets", func(t *testing.T) {
				client, service := rig.connect(t)
				_ = client.SetLinger(0)
				_ = client.Close()
				wantConnReset(t, service)
			})
			t.Run("clean end", func(t *testing.T) {
				client, service := rig.connect(t)
				_ = client.CloseWrite()
				if got, err := io.ReadAll(service); err != nil || len(got) != 0 {
					t.Fatalf("service read %q, %v after the client's FIN; want a clean EOF", got, err)
				}
				if _, err := service.Write([]byte("answer")); err != nil {
					t.Fatalf("service cannot answer a half-closed client: %v", err)
				}
				_ = service.CloseWrite()
				if got, err := io.ReadAll(client); err != nil || string(got) != "answer" {
					t.Fatalf("client read %q, %v; want answer then EOF", got, err)
				}
			})
		})
	}
}

// TestPeerLossReachesApplications: when the client at one end of a
// tunnel goes away mid-connection, closing its connection to the peer (a
// stopped client; a dead one is closed the same way once it is silent),
// the application at the other end gets a TCP reset, not a clean end:
// QUIC reports the lost connection on the stream as an error matching
// net.ErrClosed, which is no end of data.
func TestPeerLossReachesApplications(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route connet.Route
	}{
		{"direct", connet.RouteDirect},
		{"relayed", connet.RouteRelay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("destination client closes", func(t *testing.T) {
				rig := newResetRig(t, tc.route, connet.NoEncryption)
				client, _ := rig.connect(t)
				_ = rig.dc.Close()
				wantConnReset(t, client)
			})
			t.Run("source client closes", func(t *testing.T) {
				rig := newResetRig(t, tc.route, connet.NoEncryption)
				_, service := rig.connect(t)
				_ = rig.sc.Close()
				wantConnReset(t, service)
			})
		})
	}
}

func wantConnReset(t *testing.T, c *net.TCPConn) {
	t.Helper()
	got, err := io.ReadAll(c)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read %q, %v; want a connection reset", got, err)
	}
}
