package controlclient_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/control"
	"github.com/p2pconnet/connet/internal/controlclient"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/tuning"
)

// countingDialer counts the dials of the TCP fallback.
type countingDialer struct {
	muxconn.TCPDialer
	dials atomic.Int32
}

func (d *countingDialer) Dial(ctx context.Context, tlsConf *tls.Config) (muxconn.Conn, error) {
	d.dials.Add(1)
	return d.TCPDialer.Dial(ctx, tlsConf)
}

// tcpServer runs a control server for token "good" with a fresh
// certificate for localhost, listening on TCP, and on QUIC too when quic is
// set. It returns a context bounded by testTimeout for the test, the
// certificate, and the QUIC and TCP addresses.
func tcpServer(t *testing.T, quic bool) (ctx context.Context, cert *testcert.Cert, udp, tcp string) {
	t.Helper()
	cert, err := testcert.New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancelTest := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancelTest)
	in := control.Ingress{Ingress: ingress.Ingress{Addr: "127.0.0.1:0", NoQUIC: !quic, TCP: true}, Cert: cert.TLS}
	if !quic {
		in.TCPAddr = "127.0.0.1:0"
	}
	srv, err := control.New(control.Config{
		Ingresses: []control.Ingress{in},
		Tokens:    []control.Token{control.NewToken("good")},
		QUIC:      tuning.QUIC(0),
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	tcps := srv.TCPAddrs(ctx)
	if len(tcps) != 1 {
		t.Fatal("server did not start")
	}
	if quic {
		udp = srv.Addrs(ctx)[0].String()
	}
	return ctx, cert, udp, tcps[0].String()
}

// fallbackSession is a session to udpAddr over QUIC (handshakes time out
// after handshake) with the TCP fallback d.
func fallbackSession(t *testing.T, udpAddr string, cert *testcert.Cert, serverName, token string, handshake time.Duration, d muxconn.Dialer) *controlclient.Session {
	t.Helper()
	return testSession(t, controlclient.Config{
		ServerAddr: udpAddr,
		TLS:        &tls.Config{MinVersion: tls.VersionTLS13, ServerName: serverName, RootCAs: cert.Pool},
		QUIC:       tuning.QUIC(handshake),
		Token:      token,
		TCP:        d,
	})
}

// runUntilConnected runs s until it is connected, then stops it and
// returns the status it had; the test fails if that takes until ctx ends.
func runUntilConnected(t *testing.T, ctx context.Context, s *controlclient.Session) controlclient.Status {
	t.Helper()
	return runUntil(t, ctx, s, "connected", func(st controlclient.Status) bool { return st.Connected })
}

// runUntil runs s until its status is what done accepts (what says it, for
// the failure), then stops it and returns that status; the test fails if
// that takes until ctx ends.
func runUntil(t *testing.T, ctx context.Context, s *controlclient.Session, what string, done func(controlclient.Status) bool) controlclient.Status {
	t.Helper()
	runCtx, stop := context.WithCancel(ctx)
	ended := make(chan error, 1)
	go func() { ended <- s.Run(runCtx) }()
	defer func() { stop(); <-ended }()
	for {
		st, changed := s.Status()
		if done(st) {
			return st
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("not %s within %v (last error %q)", what, testTimeout, st.LastError)
		}
	}
}

// silentUDP is a UDP address where nothing answers: QUIC handshakes to it
// time out, as where a firewall drops UDP.
func silentUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.LocalAddr().String()
}

// TestFallsBackToTCPOnTimeout: QUIC handshakes that time out send the
// session to TLS over TCP, where the control protocol runs as over QUIC;
// a refusal there reaches the client with its reason.
func TestFallsBackToTCPOnTimeout(t *testing.T) {
	t.Parallel()
	ctx, cert, _, tcpAddr := tcpServer(t, false)

	s := fallbackSession(t, silentUDP(t), cert, "localhost", "good", 300*time.Millisecond, muxconn.TCPDialer{Addr: tcpAddr})
	if st := runUntilConnected(t, ctx, s); st.Transport != muxconn.TCP || !st.Observed.IsValid() {
		t.Fatalf("connected over %q, observed %v; want tcp and an observed address", st.Transport, st.Observed)
	}

	bad := fallbackSession(t, silentUDP(t), cert, "localhost", "bad", 300*time.Millisecond, muxconn.TCPDialer{Addr: tcpAddr})
	if err := bad.Run(ctx); !errors.Is(err, controlclient.ErrAuth) {
		t.Fatalf("Run with a bad token over TCP: %v, want ErrAuth", err)
	}
}

// TestTCPBesideASilentQUICDial: TCP is dialed beside a QUIC dial that has
// not answered for a moment, without waiting for the handshake timeout
// (here a minute, far beyond the test's bound), and the QUIC dial that
// lost is cancelled.
func TestTCPBesideASilentQUICDial(t *testing.T) {
	t.Parallel()
	ctx, cert, _, tcpAddr := tcpServer(t, false)

	s := fallbackSession(t, silentUDP(t), cert, "localhost", "good", time.Minute, muxconn.TCPDialer{Addr: tcpAddr})
	if st := runUntilConnected(t, ctx, s); st.Transport != muxconn.TCP {
		t.Fatalf("connected over %q, want tcp", st.Transport)
	}
}

// TestNoFallbackWhenQUICAnswers: a QUIC handshake that fails for another
// reason than a timeout (here the server's certificate does not match the
// name) is not a blocked path, and TCP is not tried.
func TestNoFallbackWhenQUICAnswers(t *testing.T) {
	t.Parallel()
	ctx, cert, udpAddr, tcpAddr := tcpServer(t, true)
	d := &countingDialer{TCPDialer: muxconn.TCPDialer{Addr: tcpAddr}}
	s := fallbackSession(t, udpAddr, cert, "other.example", "good", 0, d)
	if err := s.Run(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("Run with a certificate for another name: %v, want an untrusted-certificate error", err)
	}
	if n := d.dials.Load(); n != 0 {
		t.Fatalf("TCP dialed %d times after a QUIC handshake that was answered, want 0", n)
	}
}
