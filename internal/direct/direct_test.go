package direct

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/quicdial"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/quic-go/quic-go"
)

func newTransport(t *testing.T) *quic.Transport {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() { _ = tr.Close(); _ = udp.Close() })
	return tr
}

func newIdentity(t *testing.T) *identity.Identity {
	t.Helper()
	id, err := identity.Generate("test")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// listenPeer accepts peer connections for srv, admitting only the given
// client identities.
func listenPeer(t *testing.T, srv *identity.Identity, allowed ...identity.ID) (*quic.Transport, <-chan *quic.Conn) {
	t.Helper()
	tr := newTransport(t)
	known := func(_ context.Context, id identity.ID) bool {
		for _, a := range allowed {
			if a == id {
				return true
			}
		}
		return false
	}
	ln, err := tr.Listen(srv.PinnedServerConfig(wire.ALPNPeer, known, 10*time.Millisecond), tuning.QUIC(0))
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan *quic.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	return tr, conns
}

func addrOf(tr *quic.Transport) netip.AddrPort {
	return tr.Conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestDeadCandidateDoesNotDelay dials a dead candidate (a socket that never
// answers), listed first, next to a live one, with a handshake timeout far
// beyond the test's deadline: trying candidates one after another would
// spend the whole deadline on the dead one, so success means they were not.
func TestDeadCandidateDoesNotDelay(t *testing.T) {
	client, server := newIdentity(t), newIdentity(t)
	srvTr, _ := listenPeer(t, server, client.ID)
	dead, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()

	conf := tuning.QUIC(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	candidates := []netip.AddrPort{dead.LocalAddr().(*net.UDPAddr).AddrPort(), addrOf(srvTr)}
	conn, err := quicdial.Any(ctx, newTransport(t), candidates, client.PinnedClientConfig(server.DER(), wire.ALPNPeer), conf, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("quicdial.Any: %v", err)
	}
	defer conn.CloseWithError(0, "")
	if got := conn.RemoteAddr().(*net.UDPAddr).AddrPort(); got != addrOf(srvTr) {
		t.Fatalf("connected to %v, want the live candidate %v", got, addrOf(srvTr))
	}
}

// TestPinning checks both directions of certificate pinning: a client that
// expects another certificate refuses the server, and a server refuses a
// client it was not told about.
func TestPinning(t *testing.T) {
	client, server, stranger := newIdentity(t), newIdentity(t), newIdentity(t)
	srvTr, conns := listenPeer(t, server, client.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conf := tuning.QUIC(2 * time.Second)
	target := []netip.AddrPort{addrOf(srvTr)}

	// The right pair connects.
	conn, err := quicdial.Any(ctx, newTransport(t), target, client.PinnedClientConfig(server.DER(), wire.ALPNPeer), conf, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("pinned pair: %v", err)
	}
	// The server accepts it (the client's handshake may finish first, so
	// wait for the server before closing).
	select {
	case <-conns:
	case <-ctx.Done():
		t.Fatal("the server never accepted the pinned client")
	}
	_ = conn.CloseWithError(0, "")

	// Expecting the stranger's certificate, the client refuses the server.
	if _, err := quicdial.Any(ctx, newTransport(t), target, client.PinnedClientConfig(stranger.DER(), wire.ALPNPeer), conf, slog.New(slog.DiscardHandler)); !errors.Is(err, identity.ErrPinMismatch) {
		t.Fatalf("client with another pinned certificate: %v, want ErrPinMismatch", err)
	}
	// The stranger, though it pins the right server, is refused. In TLS
	// 1.3 the client finishes its handshake before the server has checked
	// the client certificate, so the refusal may arrive as the server
	// closing the connection right after.
	conn, err = quicdial.Any(ctx, newTransport(t), target, stranger.PinnedClientConfig(server.DER(), wire.ALPNPeer), conf, slog.New(slog.DiscardHandler))
	if err == nil {
		select {
		case <-conn.Context().Done():
			err = context.Cause(conn.Context())
		case <-ctx.Done():
			t.Fatal("server kept a connection from an unknown client")
		}
	}
	var tlsErr *quic.TransportError
	if !errors.As(err, &tlsErr) || !tlsErr.ErrorCode.IsCryptoError() {
		t.Fatalf("unknown client: got %v, want a TLS alert from the server", err)
	}
	select {
	case c := <-conns:
		t.Fatalf("listener produced a connection from %v", c.RemoteAddr())
	default:
	}
}

func TestLocalAddrsSpecificIP(t *testing.T) {
	laddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}
	got, err := LocalAddrs(laddr, false)
	if err != nil || len(got) != 0 {
		t.Fatalf("loopback without withLoopback: %v, %v", got, err)
	}
	got, err = LocalAddrs(laddr, true)
	if err != nil || len(got) != 1 || got[0] != netip.MustParseAddrPort("127.0.0.1:4242") {
		t.Fatalf("loopback with withLoopback: %v, %v", got, err)
	}
}
