package connet_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/testprog"
	"github.com/p2pconnet/connet/internal/testwait"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/quic-go/quic-go"

	"crypto/tls"
)

// Tokens of the hostile-input table. The server's log must never show one.
const (
	tokenCIDR  = "token-cidr-SECRET"
	tokenNamed = "token-named-SECRET"
	tokenRole  = "token-role-SECRET"
	badToken   = "not-a-token-SECRET"
)

// TestHostileInputTable throws hostile input at a live server, one kind
// after another, while a healthy tunnel beside it keeps echoing over one
// long-lived connection and over a new connection every round. Each kind
// must be refused, the refusal logged without secrets, and the healthy
// tunnel must never fail.
func TestHostileInputTable(t *testing.T) {
	logs := &testprog.LockedBuffer{}
	serverLog := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	denyLoopback, err := connet.ParseIPRestriction(nil, []string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t,
		with(connet.ServerLogger(serverLog)),
		with(connet.ServerClientTokens(tokenCIDR, tokenNamed, tokenRole)),
		with(connet.ServerClientTokenRestrictions(
			connet.TokenRestriction{}, connet.TokenRestriction{}, // token-d, token-s
			connet.TokenRestriction{IP: denyLoopback},
			connet.TokenRestriction{NameMatches: regexp.MustCompile(`^allowed-`)},
			connet.TokenRestriction{Role: "source"},
		)),
	)
	healthy := startHealthyTunnel(t, h)

	cases := []struct {
		name string
		run  func(t *testing.T)
		// logged must appear in the server's log after the case.
		logged string
	}{
		{"bad token", func(t *testing.T) {
			_, err := connectErr(h, badToken)
			if !errors.Is(err, connet.ErrRefused) {
				t.Fatalf("connect with a bad token: %v, want ErrRefused", err)
			}
		}, "client refused"},
		{"token from a denied address", func(t *testing.T) {
			_, err := connectErr(h, tokenCIDR)
			if !errors.Is(err, connet.ErrRefused) {
				t.Fatalf("connect from a denied address: %v, want ErrRefused", err)
			}
		}, "client refused"},
		{"one token reused by many clients", func(t *testing.T) {
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					if cl, err := connectErr(h, "token-s"); err == nil {
						_ = cl.Close()
					}
				})
			}
			wg.Wait()
		}, "client connected"},
		{"wrong CA", func(t *testing.T) {
			other, err := testcert.New("localhost", "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			_, err = connectErr(h, "token-s", connet.ClientControlCAs(other.Pool))
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("connect trusting another CA: %v, want a certificate error", err)
			}
		}, ""},
		{"denied endpoint name", func(t *testing.T) {
			refusedEndpoint(t, h, tokenNamed, "forbidden", "allowed-one", false)
		}, "endpoint refused"},
		{"denied role", func(t *testing.T) {
			refusedEndpoint(t, h, tokenRole, "dst-by-source-token", "src-ok", true)
		}, "endpoint refused"},
		{"oversized frame", func(t *testing.T) {
			c := rawControl(t, h)
			_, _ = c.stream.Write([]byte{0xff, 0xff, 0xff, 0xff})
			expectClosed(t, c)
		}, "client refused"},
		{"malformed frame", func(t *testing.T) {
			c := rawControl(t, h)
			garbage := make([]byte, 64)
			_, _ = rand.Read(garbage)
			_, _ = c.stream.Write(append([]byte{0, 0, 0, 64}, garbage...))
			expectClosed(t, c)
		}, "client refused"},
		{"garbage datagrams", func(t *testing.T) {
			udp, err := net.Dial("udp", h.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer udp.Close()
			for i := range 200 {
				b := make([]byte, 1+i*6)
				_, _ = rand.Read(b)
				_, _ = udp.Write(b)
			}
		}, ""},
		{"truncated handshakes", func(t *testing.T) {
			for range 50 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
				_, _ = dialControl(ctx, t, h)
				cancel()
			}
		}, ""},
		{"flood of handshakes and unauthenticated streams", func(t *testing.T) {
			var wg sync.WaitGroup
			for range 32 {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					conn, err := dialControl(ctx, t, h)
					if err != nil {
						return
					}
					defer conn.CloseWithError(0, "")
					for range 64 {
						s, err := conn.OpenStream()
						if err != nil {
							return
						}
						// A header announcing a large frame that never comes.
						_, _ = s.Write([]byte{0, 0x3f, 0xff, 0xff})
					}
				})
			}
			wg.Wait()
		}, ""},
		{"oversized metadata", func(t *testing.T) {
			_, err := connectErr(h, "token-s", connet.ClientMetadata(strings.Repeat("m", 4<<20)))
			if err == nil {
				t.Fatal("a client with 4 MiB of metadata was accepted")
			}
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t)
			if c.logged != "" {
				testwait.For(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), c.logged) }, "log line %q", c.logged)
			}
		})
	}
	healthy.stop(t)
	for _, secret := range []string{tokenCIDR, tokenNamed, tokenRole, badToken, "token-d", "token-s"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the server logged the token %q", secret)
		}
	}
}

// connectErr connects a client, failing within a few seconds.
func connectErr(h *harness, token string, opts ...connet.ClientOption) (*connet.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cl, err := connet.Connect(ctx, h.clientOptions(token, opts...)...)
	if err == nil {
		h.t.Cleanup(func() { _ = cl.Close() })
	}
	return cl, err
}

// refusedEndpoint adds an endpoint the token may not have and one it may,
// and checks that only the first is refused.
func refusedEndpoint(t *testing.T, h *harness, token, bad, good string, badIsDestination bool) {
	t.Helper()
	cl, err := connectErr(h, token)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if badIsDestination {
		if _, err := cl.Destination(ctx, connet.NewDestinationConfig(bad)); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Source(ctx, connet.NewSourceConfig(good)); err != nil {
			t.Fatal(err)
		}
	} else {
		if _, err := cl.Source(ctx, connet.NewSourceConfig(bad)); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Source(ctx, connet.NewSourceConfig(good)); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, 10*time.Second, func() bool {
		st := cl.Status()
		refused := map[string]bool{}
		for _, e := range append(st.Destinations, st.Sources...) {
			refused[e.Name] = e.Refused != ""
		}
		return refused[bad] && !refused[good]
	}, "endpoint %q refused and %q not", bad, good)
}

type rawConn struct {
	conn   *quic.Conn
	stream *quic.Stream
}

// dialControl opens a QUIC connection to the control server with a
// throwaway client certificate, sending nothing.
func dialControl(ctx context.Context, t *testing.T, h *harness) (*quic.Conn, error) {
	cert, err := testcert.New("hostile")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := net.ResolveUDPAddr("udp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() { _ = tr.Close(); _ = udp.Close() })
	return tr.Dial(ctx, addr, &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert.TLS},
		RootCAs:      h.cert.Pool,
		ServerName:   "localhost",
		NextProtos:   []string{wire.ALPNControl},
	}, tuning.QUIC(0))
}

// rawControl is an authenticated-looking start: a connection and a stream
// on which the test writes what it likes.
func rawControl(t *testing.T, h *harness) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := dialControl(ctx, t, h)
	if err != nil {
		t.Fatal(err)
	}
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &rawConn{conn: conn, stream: s}
}

// expectClosed waits for the server to end the connection.
func expectClosed(t *testing.T, c *rawConn) {
	t.Helper()
	select {
	case <-c.conn.Context().Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the server kept a connection that sent a bad frame")
	}
}

// healthyTunnel echoes lines over one long-lived connection and over a new
// connection each round until stopped, counting failures.
type healthyTunnel struct {
	stopc    chan struct{}
	done     sync.WaitGroup
	rounds   atomic.Int64
	failures []error
	mu       sync.Mutex
}

func startHealthyTunnel(t *testing.T, h *harness) *healthyTunnel {
	t.Helper()
	ctx := context.Background()
	dst, err := h.connect("token-d").Destination(ctx, connet.NewDestinationConfig("healthy"))
	if err != nil {
		t.Fatal(err)
	}
	go echo(dst)
	src, err := h.connect("token-s").Source(ctx, connet.NewSourceConfig("healthy"))
	if err != nil {
		t.Fatal(err)
	}
	long := dialEventually(t, src)
	ht := &healthyTunnel{stopc: make(chan struct{})}
	fail := func(err error) {
		ht.mu.Lock()
		defer ht.mu.Unlock()
		ht.failures = append(ht.failures, err)
	}
	ht.done.Go(func() {
		defer long.Close()
		r := bufio.NewReader(long)
		for i := 0; ; i++ {
			select {
			case <-ht.stopc:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if err := echoLine(long, r, fmt.Sprintf("long %d", i)); err != nil {
				fail(fmt.Errorf("long-lived connection, round %d: %w", i, err))
				return
			}
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			c, err := src.Dial(dctx)
			cancel()
			if err != nil {
				fail(fmt.Errorf("new connection, round %d: %w", i, err))
				continue
			}
			if err := echoLine(c, bufio.NewReader(c), fmt.Sprintf("new %d", i)); err != nil {
				fail(fmt.Errorf("new connection, round %d: %w", i, err))
			}
			_ = c.Close()
			ht.rounds.Add(1)
		}
	})
	return ht
}

func echoLine(c net.Conn, r *bufio.Reader, line string) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return fmt.Errorf("echo %q, want %q", got, line)
	}
	return nil
}

func (ht *healthyTunnel) stop(t *testing.T) {
	t.Helper()
	close(ht.stopc)
	ht.done.Wait()
	ht.mu.Lock()
	defer ht.mu.Unlock()
	if len(ht.failures) > 0 {
		t.Fatalf("the healthy tunnel failed %d times (of %d rounds): %v", len(ht.failures), ht.rounds.Load(), errors.Join(ht.failures...))
	}
	if ht.rounds.Load() == 0 {
		t.Fatal("the healthy tunnel made no round")
	}
}
