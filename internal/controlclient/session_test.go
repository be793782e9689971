package controlclient_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/control"
	"github.com/p2pconnet/connet/internal/controlclient"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/notify"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
)

// testTimeout bounds every wait; a healthy run needs a fraction.
const testTimeout = 15 * time.Second

// session returns a session of a fresh client identity to addr.
func session(t *testing.T, addr string, pool *testcert.Cert, token, metadata string) *controlclient.Session {
	t.Helper()
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: "localhost"}
	if pool != nil {
		tlsConf.RootCAs = pool.Pool
	}
	return testSession(t, controlclient.Config{ServerAddr: addr, TLS: tlsConf, QUIC: tuning.QUIC(0), Token: token, Metadata: metadata})
}

// testSession is a session with cfg, completed with what every test's
// session has: a fresh identity's certificate in cfg.TLS, a UDP transport
// on loopback, a silent logger (unless cfg has one) and no local addresses
// to announce.
func testSession(t *testing.T, cfg controlclient.Config) *controlclient.Session {
	t.Helper()
	return testSessionWith(t, cfg, &notify.Value[controlclient.Announcement]{}, func(controlclient.State) {})
}

// testSessionWith is testSession announcing announce, with the server's
// states going to onState.
func testSessionWith(t *testing.T, cfg controlclient.Config, announce *notify.Value[controlclient.Announcement], onState func(controlclient.State)) *controlclient.Session {
	t.Helper()
	id, err := identity.Generate("client")
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() { _ = tr.Close(); _ = udp.Close() })
	cfg.Transport = tr
	cfg.TLS.Certificates = []tls.Certificate{id.Cert}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.LocalAddrs = func(netip.AddrPort) []netip.AddrPort { return nil }
	return controlclient.New(cfg, announce, onState)
}

// TestMetadataOverTheLimitFailsUpFront: a session whose metadata the
// server would refuse says so at once, without connecting (and so without
// retrying forever against a server that is not even there).
func TestMetadataOverTheLimitFailsUpFront(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s := session(t, "127.0.0.1:9", nil, "token", strings.Repeat("m", wire.MaxMetadata+1))
	err := s.Run(ctx)
	if !errors.Is(err, controlclient.ErrTooLarge) || !strings.Contains(err.Error(), "metadata") {
		t.Fatalf("Run: %v, want ErrTooLarge about the metadata", err)
	}
}

// TestOversizedHelloGetsTheReason: a hello the server refuses unread (here
// for a token far over the hello cap, larger than QUIC's first flow-control
// window) stops the client's write; the client still reads the server's
// reason and stops, instead of reporting a write error and reconnecting.
func TestOversizedHelloGetsTheReason(t *testing.T) {
	t.Parallel()
	cert, err := testcert.New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := control.New(control.Config{
		Ingresses: []control.Ingress{{Ingress: ingress.Ingress{Addr: "127.0.0.1:0"}, Cert: cert.TLS}},
		Tokens:    []control.Token{control.NewToken("good")},
		QUIC:      tuning.QUIC(0),
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	addrs := srv.Addrs(ctx)
	if len(addrs) != 1 {
		t.Fatal("server did not start")
	}

	s := session(t, addrs[0].String(), cert, strings.Repeat("t", 2<<20), "")
	err = s.Run(ctx)
	var werr *wire.Error
	if !errors.Is(err, controlclient.ErrAuth) || !errors.As(err, &werr) || werr.Code != pb.ErrorCode_ERROR_CODE_LIMIT {
		t.Fatalf("Run: %v, want the server's refusal for a hello too large", err)
	}
}
