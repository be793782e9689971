package controlclient_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/control"
	"github.com/p2pconnet/connet/internal/controlclient"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/testprog"
	"github.com/p2pconnet/connet/internal/tuning"
)

// certAndContext is a fresh certificate for localhost and 127.0.0.1, and
// a context bounded by testTimeout for the test.
func certAndContext(t *testing.T) (context.Context, *testcert.Cert) {
	t.Helper()
	cert, err := testcert.New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx, cert
}

// closedPort is a loopback port where nothing listens, on UDP and on TCP.
func closedPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	_ = c.Close()
	return addr
}

// firstError runs s until it reports an error in its status, and returns
// the error.
func firstError(t *testing.T, ctx context.Context, s *controlclient.Session) string {
	t.Helper()
	return runUntil(t, ctx, s, "failed", func(st controlclient.Status) bool { return st.LastError != "" }).LastError
}

// TestServerDownSaysSo: a client pointed at a port where nothing listens
// (the server is down; its host answers "port unreachable") says that
// the server refuses connections, on one line, without calling it a
// blocked path, with the TCP fallback and without.
func TestServerDownSaysSo(t *testing.T) {
	t.Parallel()
	cert, err := testcert.New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tcp  bool
	}{{"quic only", false}, {"with the tcp fallback", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			addr := closedPort(t)
			logs := &testprog.LockedBuffer{}
			cfg := controlclient.Config{
				ServerAddr:   addr,
				TLS:          &tls.Config{MinVersion: tls.VersionTLS13, ServerName: "localhost", RootCAs: cert.Pool},
				QUIC:         tuning.QUIC(2 * time.Second),
				Token:        "good",
				Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				ProbeRefusal: true,
			}
			if tc.tcp {
				cfg.TCP = &muxconn.Fallback{Dialers: []muxconn.Dialer{muxconn.TCPDialer{Addr: addr}}}
			}
			got := firstError(t, ctx, testSession(t, cfg))
			want := "control server " + addr + " refuses connections (is it running?): "
			if !strings.HasPrefix(got, want) || strings.Contains(got, "\n") {
				t.Errorf("last error %q, want one line starting %q", got, want)
			}
			if !strings.Contains(got, "quic to "+addr+": connection refused (nothing receives UDP at that port)") {
				t.Errorf("last error %q does not say QUIC was refused", got)
			}
			if tc.tcp && !strings.Contains(got, "tcp: dial tcp "+addr+": connect: connection refused") {
				t.Errorf("last error %q does not say TCP was refused too", got)
			}
			if strings.Contains(logs.String(), "UDP blocked") {
				t.Errorf("a server that is down is called a blocked path:\n%s", logs)
			}
		})
	}
}

// TestSilentServerIsPossiblyBlocked: where nothing answers at all (a
// firewall dropping UDP), the client still says UDP may be blocked and
// tries TCP; the error that all transports failed is one line.
func TestSilentServerIsPossiblyBlocked(t *testing.T) {
	t.Parallel()
	ctx, cert := certAndContext(t)
	tcpAddr := closedPort(t)
	logs := &testprog.LockedBuffer{}
	s := testSession(t, controlclient.Config{
		ServerAddr:   silentUDP(t),
		TLS:          &tls.Config{MinVersion: tls.VersionTLS13, ServerName: "localhost", RootCAs: cert.Pool},
		QUIC:         tuning.QUIC(300 * time.Millisecond),
		Token:        "good",
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ProbeRefusal: true,
		TCP: &muxconn.Fallback{Dialers: []muxconn.Dialer{
			muxconn.TCPDialer{Addr: tcpAddr},
			muxconn.TCPDialer{Addr: tcpAddr},
		}},
	})
	got := firstError(t, ctx, s)
	if strings.Contains(got, "\n") || !strings.Contains(got, "connection refused; ") {
		t.Errorf("last error %q, want the transports' errors on one line", got)
	}
	if strings.Contains(got, "refuses connections") {
		t.Errorf("last error %q: a silent server is not a refusing one", got)
	}
	if !strings.Contains(logs.String(), "(UDP blocked?): trying TCP beside it") {
		t.Errorf("a silent QUIC server is not called a possibly blocked path:\n%s", logs)
	}
}

// TestServerStartingLateIsReachedOverQUIC: a client that starts a moment
// before its server has its first QUIC packets refused; the dial goes on,
// and the handshake's retransmission reaches the server once it is up,
// over QUIC: a refused port is no reason to settle on TCP at once (where
// the client would have no direct paths until QUIC is tried again).
func TestServerStartingLateIsReachedOverQUIC(t *testing.T) {
	t.Parallel()
	ctx, cert := certAndContext(t)
	addr := closedPort(t)
	tcp := &countingDialer{TCPDialer: muxconn.TCPDialer{Addr: addr}}
	s := testSession(t, controlclient.Config{
		ServerAddr:   addr,
		TLS:          &tls.Config{MinVersion: tls.VersionTLS13, ServerName: "localhost", RootCAs: cert.Pool},
		QUIC:         tuning.QUIC(0),
		Token:        "good",
		ProbeRefusal: true,
		TCP:          &muxconn.Fallback{Dialers: []muxconn.Dialer{tcp}},
	})
	go func() {
		// The client's first packets find the port closed; the server is
		// up well within the QUIC dial's head start over TCP.
		time.Sleep(150 * time.Millisecond)
		startServerAt(t, ctx, addr, cert)
	}()
	if st := runUntilConnected(t, ctx, s); st.Transport != muxconn.QUIC {
		t.Fatalf("connected over %s to a server that came up late, want quic", st.Transport)
	}
	if n := tcp.dials.Load(); n != 0 {
		t.Fatalf("TCP dialed %d times: a refused QUIC port sent the client to TCP at once", n)
	}
}

// startServerAt runs a control server for token "good" on addr, over QUIC
// and TCP, until the test ends.
func startServerAt(t *testing.T, ctx context.Context, addr string, cert *testcert.Cert) {
	srv, err := control.New(control.Config{
		Ingresses: []control.Ingress{{Ingress: ingress.Ingress{Addr: addr, TCP: true}, Cert: cert.TLS}},
		Tokens:    []control.Token{control.NewToken("good")},
		QUIC:      tuning.QUIC(0),
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Error(err)
		return
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
}
