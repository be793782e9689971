package connet_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/testprog"
)

// testLogger logs to the test output when -v is given, else nowhere.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

// harness is a control server and helpers to connect clients to it, all on
// loopback.
type harness struct {
	t    testing.TB
	cert *testcert.Cert
	addr string
	// relayControlAddr is where relays that run apart join, if enabled.
	relayControlAddr string
	srv              *connet.Server
}

// serverOpt is a server option that may need the harness's certificate.
type serverOpt func(cert *testcert.Cert) connet.ServerOption

// with passes an option that needs no certificate.
func with(o connet.ServerOption) serverOpt {
	return func(*testcert.Cert) connet.ServerOption { return o }
}

// withRelayControl lets relays that run apart join the server.
func withRelayControl(cert *testcert.Cert) connet.ServerOption {
	return connet.ServerRelayControlIngress(connet.Ingress{Addr: "127.0.0.1:0", Cert: cert.TLS})
}

func newHarness(t testing.TB, extra ...serverOpt) *harness {
	t.Helper()
	return newHarnessIngress(t, nil, extra...)
}

// newHarnessIngress is newHarness with the clients' ingress changed by
// ingress (when not nil) before the server starts.
func newHarnessIngress(t testing.TB, ingress func(*connet.Ingress), extra ...serverOpt) *harness {
	t.Helper()
	cert, err := testcert.New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	in := connet.Ingress{Addr: "127.0.0.1:0", Cert: cert.TLS}
	if ingress != nil {
		ingress(&in)
	}
	opts := []connet.ServerOption{
		connet.ServerIngress(in),
		connet.ServerClientTokens("token-d", "token-s"),
		connet.ServerStoreDir(t.TempDir()),
		connet.ServerLogger(testLogger(t)),
	}
	for _, o := range extra {
		opts = append(opts, o(cert))
	}
	srv, err := connet.NewServer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	h := &harness{t: t, cert: cert, addr: srv.Addrs(context.Background())[0].String(), srv: srv}
	if ra := srv.RelayControlAddrs(context.Background()); len(ra) > 0 {
		h.relayControlAddr = ra[0].String()
	}
	return h
}

// clientOptions are the options of a client of this harness with token,
// followed by opts.
func (h *harness) clientOptions(token string, opts ...connet.ClientOption) []connet.ClientOption {
	return append([]connet.ClientOption{
		connet.ClientToken(token),
		connet.ClientControlAddress(h.addr),
		connet.ClientControlCAs(h.cert.Pool),
		connet.ClientDirectAddress("127.0.0.1:0"),
		connet.ClientNatPMP(connet.NatPMPDisabled),
		connet.ClientLogger(testLogger(h.t)),
	}, opts...)
}

func (h *harness) connect(token string, opts ...connet.ClientOption) *connet.Client {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := connet.Connect(ctx, h.clientOptions(token, opts...)...)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = c.Close() })
	return c
}

// echo accepts connections on d and echoes them back until d closes.
func echo(d *connet.Destination) {
	for {
		conn, err := d.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			_, _ = io.Copy(conn, conn)
		}()
	}
}

func TestTunnelEcho(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	dc := h.connect("token-d")
	sc := h.connect("token-s")
	dst, err := dc.Destination(ctx, connet.NewDestinationConfig("echo"))
	if err != nil {
		t.Fatal(err)
	}
	go echo(dst)
	src, err := sc.Source(ctx, connet.NewSourceConfig("echo"))
	if err != nil {
		t.Fatal(err)
	}

	conn := dialEventually(t, src)
	defer conn.Close()
	echoRandom(t, conn, 1<<20)

	st := sc.Status()
	if len(st.Sources) != 1 || len(st.Sources[0].Peers) != 1 || len(st.Sources[0].Peers[0].Paths) == 0 {
		t.Fatalf("source status shows no path: %+v", st.Sources)
	}
	if kind := st.Sources[0].Peers[0].Paths[0].Kind; kind != "direct-outgoing" && kind != "direct-incoming" {
		t.Fatalf("path kind %q, want a direct path", kind)
	}
}

// echoRandom sends n random bytes through conn to an echo destination,
// half-closes, and fails the test unless the same bytes come back within
// 10 s. It returns n.
func echoRandom(t testing.TB, conn net.Conn, n int) int {
	t.Helper()
	payload := make([]byte, n)
	_, _ = rand.Read(payload)
	go func() {
		_, _ = conn.Write(payload)
		_ = conn.(interface{ CloseWrite() error }).CloseWrite()
	}()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("echo: %d of %d bytes back: %v", len(got), n, err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo returned %d bytes that differ from the %d sent", len(got), n)
	}
	return n
}

// dialEventually dials until the peers have found each other; each attempt
// fails fast while the source has no destination yet.
func dialEventually(t testing.TB, src *connet.Source) net.Conn {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := src.Dial(ctx)
		cancel()
		if err == nil {
			return conn
		}
		if !errors.Is(err, connet.ErrNoDestination) || time.Now().After(deadline) {
			t.Fatalf("dial: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestManyConcurrentConnections(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	dc := h.connect("token-d")
	sc := h.connect("token-s")
	dst, _ := dc.Destination(ctx, connet.NewDestinationConfig("echo"))
	go echo(dst)
	src, _ := sc.Source(ctx, connet.NewSourceConfig("echo"))
	dialEventually(t, src).Close()

	// 10 000 connections open at once, far past quic-go's default stream
	// limit of 100: none may hang.
	const n = 10000
	conns := make([]net.Conn, n)
	for i := range conns {
		conn, err := src.Dial(ctx)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns[i] = conn
	}
	var wg sync.WaitGroup
	for i, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			msg := []byte{byte(i), byte(i >> 8), 42}
			if _, err := conn.Write(msg); err != nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(conn, buf); err != nil || !bytes.Equal(buf, msg) {
				t.Errorf("conn %d: got %v, %v", i, buf, err)
			}
		}()
	}
	wg.Wait()
}

func TestBadTokenIsRefused(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := connet.Connect(ctx,
		connet.ClientToken("wrong"),
		connet.ClientControlAddress(h.addr),
		connet.ClientControlCAs(h.cert.Pool),
		connet.ClientDirectAddress("127.0.0.1:0"),
		connet.ClientNatPMP(connet.NatPMPDisabled),
	)
	if !errors.Is(err, connet.ErrRefused) || connet.CodeOf(err) != connet.ErrorAuthFailed {
		t.Fatalf("Connect with a bad token: %v (code %d), want ErrRefused with ErrorAuthFailed", err, connet.CodeOf(err))
	}
}

func TestNoDestinationFailsFast(t *testing.T) {
	h := newHarness(t)
	sc := h.connect("token-s")
	src, _ := sc.Source(context.Background(), connet.NewSourceConfig("nobody"))
	_, err := src.Dial(context.Background())
	if !errors.Is(err, connet.ErrNoDestination) {
		t.Fatalf("Dial with no destination: %v, want ErrNoDestination", err)
	}
}

// relayTunnel sets up a destination and a source that may only use the
// relay, and returns the source.
func relayTunnel(t *testing.T, srcCfg connet.SourceConfig) (*connet.Client, *connet.Source) {
	t.Helper()
	h := newHarness(t, with(connet.ServerRelayIngress(connet.RelayIngress{Addr: "127.0.0.1:0", Hostports: []string{"127.0.0.1:0"}})))
	ctx := context.Background()
	dc := h.connect("token-d")
	sc := h.connect("token-s")
	dst, err := dc.Destination(ctx, connet.NewDestinationConfig("echo").WithRoute(connet.RouteRelay))
	if err != nil {
		t.Fatal(err)
	}
	go echo(dst)
	src, err := sc.Source(ctx, srcCfg)
	if err != nil {
		t.Fatal(err)
	}
	return sc, src
}

func TestRelayedTunnel(t *testing.T) {
	sc, src := relayTunnel(t, connet.NewSourceConfig("echo"))
	conn := dialEventually(t, src)
	defer conn.Close()
	echoRandom(t, conn, 1<<20)
	st := sc.Status()
	paths := st.Sources[0].Peers[0].Paths
	if len(paths) != 1 || paths[0].Kind != "relay" {
		t.Fatalf("with route relay the source must show only a relay path, got %+v", paths)
	}
}

// TestSplitControlAndRelay runs the relay apart from the control server,
// joined with a relay token, and tunnels through it.
func TestSplitControlAndRelay(t *testing.T) {
	h := newHarness(t, with(connet.ServerRelayTokens([]string{"relay-token"}, nil)), withRelayControl)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	relayDone := make(chan error, 1)
	r, err := connet.NewRelay(
		connet.RelayToken("relay-token"),
		connet.RelayControlAddress(h.relayControlAddr),
		connet.RelayControlCAs(h.cert.Pool),
		connet.RelayControlServerName("127.0.0.1"),
		connet.RelayIngressAt(connet.RelayIngress{Addr: "127.0.0.1:0", Hostports: []string{"127.0.0.1:0"}}),
		connet.RelayStoreDir(t.TempDir()),
		connet.RelayLogger(testLogger(t)),
	)
	if err != nil {
		t.Fatal(err)
	}
	go func() { relayDone <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-relayDone; err != nil {
			t.Errorf("relay: %v", err)
		}
	}()

	dc := h.connect("token-d")
	sc := h.connect("token-s")
	dst, _ := dc.Destination(ctx, connet.NewDestinationConfig("echo").WithRoute(connet.RouteRelay))
	go echo(dst)
	src, _ := sc.Source(ctx, connet.NewSourceConfig("echo"))
	conn := dialEventually(t, src)
	defer conn.Close()
	if _, err := conn.Write([]byte("via a relay of its own\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 23)
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatal(err)
	}
	if st := sc.Status(); st.Sources[0].Peers[0].Paths[0].Kind != "relay" {
		t.Fatalf("expected a relay path, got %+v", st.Sources[0].Peers[0].Paths)
	}
}

// TestRelayEncryptionMismatch: a source that only allows tls and a
// destination that only allows dhxcp cannot talk over a relay; the source's
// dial says why, and both sides log it.
func TestRelayEncryptionMismatch(t *testing.T) {
	h := newHarness(t, with(connet.ServerRelayIngress(connet.RelayIngress{Addr: "127.0.0.1:0", Hostports: []string{"127.0.0.1:0"}})))
	ctx := context.Background()
	var dstLog, srcLog testprog.LockedBuffer
	dc := h.connect("token-d", connet.ClientLogger(slog.New(slog.NewTextHandler(&dstLog, nil))),
		connet.ClientRelayEncryptions(connet.DHXCPEncryption))
	sc := h.connect("token-s", connet.ClientLogger(slog.New(slog.NewTextHandler(&srcLog, nil))),
		connet.ClientRelayEncryptions(connet.TLSEncryption))
	if _, err := dc.Destination(ctx, connet.NewDestinationConfig("echo").WithRoute(connet.RouteRelay)); err != nil {
		t.Fatal(err)
	}
	src, err := sc.Source(ctx, connet.NewSourceConfig("echo"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err = src.Dial(ctx)
		if err != nil && strings.Contains(err.Error(), "no relay encryption allowed by both ends") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial never reported the mismatch; last error: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The destination logs it when the control server names the source to
	// it, which may come after the source's dial failed.
	for name, log := range map[string]*testprog.LockedBuffer{"destination": &dstLog, "source": &srcLog} {
		for !strings.Contains(log.String(), "relayed connections with this peer will fail") {
			if time.Now().After(deadline) {
				t.Fatalf("the %s did not log the mismatch:\n%s", name, log.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestDestinationDialTimeout: a service that never answers is given up
// after DestinationConfig.DialTimeout, and the source learns it as the
// destination's dial failure rather than waiting on its own deadline.
func TestDestinationDialTimeout(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dst, err := h.connect("token-d").Destination(ctx, connet.DestinationConfig{Name: "slow", DialTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = dst.Serve(ctx, func(ctx context.Context, _ netip.AddrPort) (net.Conn, error) {
			<-ctx.Done() // a service that never answers
			return nil, context.Cause(ctx)
		})
	}()
	src, err := h.connect("token-s").Source(ctx, connet.NewSourceConfig("slow"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := src.Dial(dctx)
		dcancel()
		if err == nil {
			_ = conn.Close()
			t.Fatal("a dial to a service that never answers succeeded")
		}
		if connet.CodeOf(err) == connet.ErrorDestinationDialFailed {
			break
		}
		if !errors.Is(err, connet.ErrNoDestination) || time.Now().After(deadline) {
			t.Fatalf("dial: %v, want the destination's dial failure", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
