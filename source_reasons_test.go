package connet_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/testwait"
)

// dialReason dials src until the error is no longer ErrNoPeer (the control
// server may not have named the destination yet) or 10 s have passed, and
// returns the last error.
func dialReason(t *testing.T, src *connet.Source) error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := src.Dial(context.Background())
		if err == nil {
			_ = conn.Close()
			t.Fatal("Dial succeeded; want a failure")
		}
		if !errors.Is(err, connet.ErrNoPeer) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantReason checks that err is the reason want (and ErrNoDestination), and
// that the source's status shows it as its last reason.
func wantReason(t *testing.T, c *connet.Client, err, want error) {
	t.Helper()
	if !errors.Is(err, want) || !errors.Is(err, connet.ErrNoDestination) {
		t.Fatalf("Dial: %v; want %v (and ErrNoDestination)", err, want)
	}
	for _, other := range []error{connet.ErrNoPeer, connet.ErrPeerUnreachable, connet.ErrRouteMismatch, connet.ErrEndpointRefused} {
		if other != want && errors.Is(err, other) {
			t.Errorf("Dial: %v matches %v too", err, other)
		}
	}
	st := c.Status()
	if len(st.Sources) != 1 {
		t.Fatalf("status shows %d sources, want 1", len(st.Sources))
	}
	got := st.Sources[0]
	if wantName := want.(*connet.DialReason).Reason(); got.LastReason != wantName || got.LastError != err.Error() {
		t.Errorf("status: last_reason %q, last_error %q; want %q, %q", got.LastReason, got.LastError, wantName, err.Error())
	}
}

// TestSourceFailureReasons: each way a source can find no destination it
// can use fails Dial at once, with its own error and status reason.
func TestSourceFailureReasons(t *testing.T) {
	ctx := context.Background()
	t.Run("no peer online", func(t *testing.T) {
		h := newHarness(t)
		sc := h.connect("token-s")
		src, err := sc.Source(ctx, connet.NewSourceConfig("nobody"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Dial(ctx)
		wantReason(t, sc, err, connet.ErrNoPeer)
	})
	t.Run("route mismatch", func(t *testing.T) {
		h := newHarness(t)
		dc, sc := h.connect("token-d"), h.connect("token-s")
		dst, err := dc.Destination(ctx, connet.NewDestinationConfig("web").WithRoute(connet.RouteRelay))
		if err != nil {
			t.Fatal(err)
		}
		go echo(dst)
		src, err := sc.Source(ctx, connet.NewSourceConfig("web").WithRoute(connet.RouteDirect))
		if err != nil {
			t.Fatal(err)
		}
		err = dialReason(t, src)
		wantReason(t, sc, err, connet.ErrRouteMismatch)
		if !strings.Contains(err.Error(), "source route direct, destination route relay") {
			t.Errorf("Dial: %v; want both routes named", err)
		}
	})
	t.Run("peer unreachable", func(t *testing.T) {
		// Both ends allow relays, but the server runs none: the peer is
		// online with no path, and none can come.
		h := newHarness(t)
		dc, sc := h.connect("token-d"), h.connect("token-s")
		dst, err := dc.Destination(ctx, connet.NewDestinationConfig("web").WithRoute(connet.RouteRelay))
		if err != nil {
			t.Fatal(err)
		}
		go echo(dst)
		src, err := sc.Source(ctx, connet.NewSourceConfig("web"))
		if err != nil {
			t.Fatal(err)
		}
		wantReason(t, sc, dialReason(t, src), connet.ErrPeerUnreachable)
	})
	t.Run("source refused by the control server", func(t *testing.T) {
		h := newHarness(t, with(connet.ServerClientTokenRestrictions(
			connet.TokenRestriction{}, connet.TokenRestriction{NameMatches: regexp.MustCompile(`^allowed-`)})))
		sc := h.connect("token-s")
		src, err := sc.Source(ctx, connet.NewSourceConfig("forbidden"))
		if err != nil {
			t.Fatal(err)
		}
		testwait.For(t, 10*time.Second, func() bool { return sc.Status().Sources[0].Refused != "" }, "source refused")
		_, err = src.Dial(ctx)
		wantReason(t, sc, err, connet.ErrEndpointRefused)
		if !strings.Contains(err.Error(), "refused by control server") {
			t.Errorf("Dial: %v; want the control server's refusal", err)
		}
	})
	t.Run("endpoint refused", func(t *testing.T) {
		// The destination's service is down: it refuses the stream.
		h := newHarness(t)
		dc, sc := h.connect("token-d"), h.connect("token-s")
		dst, err := dc.Destination(ctx, connet.NewDestinationConfig("web"))
		if err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			_ = dst.Serve(sctx, func(context.Context, netip.AddrPort) (net.Conn, error) {
				return nil, errors.New("service down")
			})
		}()
		src, err := sc.Source(ctx, connet.NewSourceConfig("web"))
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for err = dialReason(t, src); errors.Is(err, connet.ErrPeerUnreachable) && time.Now().Before(deadline); err = dialReason(t, src) {
			time.Sleep(20 * time.Millisecond) // the direct path is still coming up
		}
		wantReason(t, sc, err, connet.ErrEndpointRefused)
		if connet.CodeOf(err) != connet.ErrorDestinationDialFailed || !strings.Contains(err.Error(), "service down") {
			t.Errorf("Dial: %v (code %d); want the destination's dial failure", err, connet.CodeOf(err))
		}
	})
}

// TestSourceAnswersWithoutControlServer: a client that has never reached its
// control server still has its source (in status too), and Dial fails at
// once with ErrNoPeer, however long DialTimeout is.
func TestSourceAnswersWithoutControlServer(t *testing.T) {
	// Nothing listens there: a port bound and closed again.
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := udp.LocalAddr().String()
	_ = udp.Close()
	cert, err := testcert.New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, addr: addr, cert: cert}
	c, err := connet.Start(context.Background(), h.clientOptions("token-s")...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	src, err := c.Source(context.Background(), connet.SourceConfig{Name: "web", DialTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	go func() {
		conn, err := src.Dial(context.Background())
		if conn != nil {
			_ = conn.Close()
		}
		result <- err
	}()
	select {
	case err = <-result:
	case <-time.After(10 * time.Second):
		t.Fatal("Dial still waiting after 10 s with no control server")
	}
	wantReason(t, c, err, connet.ErrNoPeer)
	if !strings.Contains(err.Error(), "not connected to the control server") {
		t.Errorf("Dial: %v; want the missing control server named", err)
	}
	if st := c.Status(); st.Control.Connected {
		t.Fatal("status shows a connection to a control server that does not exist")
	}
}
