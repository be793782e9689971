package muxconn_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/quic-go/quic-go"
)

const alpn = "connet-test"

// listen starts a TCP listener on loopback presenting server's
// certificate and requiring a client certificate, as connet's servers do.
func listen(t *testing.T, server *identity.Identity, allow func(netip.Addr) bool, refused func(netip.AddrPort)) *muxconn.Listener {
	t.Helper()
	return listenWith(t, server, func(c *muxconn.ListenConfig) { c.AllowAddr, c.Refused = allow, refused })
}

// listenWith is listen with the configuration changed by change.
func listenWith(t *testing.T, server *identity.Identity, change func(*muxconn.ListenConfig)) *muxconn.Listener {
	t.Helper()
	cfg := muxconn.ListenConfig{
		Addr: "127.0.0.1:0",
		TLS: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{server.Cert},
			NextProtos:   []string{alpn},
			ClientAuth:   tls.RequireAnyClientCert,
		},
		HandshakeTimeout: 5 * time.Second,
	}
	change(&cfg)
	ln, err := muxconn.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

func ids(t *testing.T) (server, client *identity.Identity) {
	t.Helper()
	var err error
	if server, err = identity.Generate("test-server"); err != nil {
		t.Fatal(err)
	}
	if client, err = identity.Generate("test-client"); err != nil {
		t.Fatal(err)
	}
	return server, client
}

// pair connects a client to ln and returns both ends.
func pair(t *testing.T, ln *muxconn.Listener, server, client *identity.Identity) (cc, sc muxconn.Conn) {
	t.Helper()
	return pairVia(t, ln, muxconn.TCPDialer{Addr: ln.Addr().String()}, server, client)
}

// pairVia connects a client to ln with d and returns both ends, which are
// closed when the test ends.
func pairVia(t *testing.T, ln *muxconn.Listener, d muxconn.Dialer, server, client *identity.Identity) (cc, sc muxconn.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := d.Dial(ctx, client.PinnedClientConfig(server.DER(), alpn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.CloseWithError(0, "") })
	sc, err = ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sc.CloseWithError(0, "") })
	return cc, sc
}

// TestStreamsOverTCP: streams carry data both ways with half-close, the
// server sees the client's certificate, and a reset reaches the peer as a
// remote QUIC stream error (what connet reports as "reset by peer").
func TestStreamsOverTCP(t *testing.T) {
	server, client := ids(t)
	ln := listen(t, server, nil, nil)
	cc, sc := pair(t, ln, server, client)
	if cc.Transport() != muxconn.TCP || sc.Transport() != muxconn.TCP {
		t.Fatalf("transports %s/%s, want tcp", cc.Transport(), sc.Transport())
	}
	id, err := identity.PeerID(sc.TLS())
	if err != nil || id != client.ID {
		t.Fatalf("server sees peer %v (%v), want %v", id, err, client.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Echo with half-close: the client ends its writing, still reads the
	// reply, which ends with EOF.
	cs, err := cc.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := cs.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	ss, err := sc.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(ss)
	if err != nil || string(got) != "hello" {
		t.Fatalf("server read %q, %v", got, err)
	}
	if _, err := ss.Write([]byte("world")); err != nil {
		t.Fatalf("write after the peer's half-close: %v", err)
	}
	_ = ss.CloseWrite()
	got, err = io.ReadAll(cs)
	if err != nil || string(got) != "world" {
		t.Fatalf("client read %q, %v", got, err)
	}

	// A reset is an error at the peer, not an end.
	cs2, err := cc.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = cs2.Write([]byte("x"))
	ss2, err := sc.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(ss2, buf); err != nil {
		t.Fatal(err)
	}
	cs2.Reset()
	_ = ss2.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = ss2.Read(buf)
	var serr *quic.StreamError
	if !errors.As(err, &serr) || !serr.Remote {
		t.Fatalf("read after the peer's reset: %v, want a remote stream error", err)
	}
	if cc.RTT() < 0 || sc.Received() == 0 {
		t.Fatalf("rtt %v, received %d", cc.RTT(), sc.Received())
	}
}

// TestCloseCodeOverTCP: the code a side closes with ends the peer's
// context with a remote application error carrying it, as over QUIC.
func TestCloseCodeOverTCP(t *testing.T) {
	server, client := ids(t)
	ln := listen(t, server, nil, nil)
	cc, sc := pair(t, ln, server, client)
	_ = sc.CloseWithError(3, "replaced")
	select {
	case <-cc.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("client's connection still open 10 s after the server closed it")
	}
	var aerr *quic.ApplicationError
	if err := context.Cause(cc.Context()); !errors.As(err, &aerr) || !aerr.Remote || aerr.ErrorCode != 3 {
		t.Fatalf("client's cause %v, want a remote application error with code 3", err)
	}
	if err := context.Cause(sc.Context()); !errors.As(err, &aerr) || aerr.Remote || aerr.ErrorMessage != "replaced" {
		t.Fatalf("server's cause %v, want its own close with the reason", err)
	}
}

// TestPinnedCertificateOverTCP: a client pinning another certificate
// refuses the server, as over QUIC.
func TestPinnedCertificateOverTCP(t *testing.T) {
	server, client := ids(t)
	other, _ := ids(t)
	ln := listen(t, server, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := muxconn.DialTCP(ctx, ln.Addr().String(), client.PinnedClientConfig(other.DER(), alpn))
	if !errors.Is(err, identity.ErrPinMismatch) {
		t.Fatalf("dial pinning another certificate: %v, want ErrPinMismatch", err)
	}
}

// TestAllowAddrOverTCP: an address the ingress refuses is dropped before
// the handshake and counted.
func TestAllowAddrOverTCP(t *testing.T) {
	server, client := ids(t)
	var refused atomic.Int32
	ln := listen(t, server, func(netip.Addr) bool { return false }, func(netip.AddrPort) { refused.Add(1) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := muxconn.DialTCP(ctx, ln.Addr().String(), client.PinnedClientConfig(server.DER(), alpn)); err == nil {
		t.Fatal("dial from a refused address succeeded")
	}
	if refused.Load() != 1 {
		t.Fatalf("refused %d times, want 1", refused.Load())
	}
}
