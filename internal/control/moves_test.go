package control

import (
	"net"
	"net/netip"
	"testing"

	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
)

// migrate moves c's connection to a new UDP socket at ip (QUIC connection
// migration) and returns the new local address.
func (c *rawClient) migrate(t *testing.T, ip net.IP) netip.AddrPort {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() { _ = tr.Close(); _ = udp.Close() })
	p, err := c.conn.AddPath(tr)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Probe(c.ctx); err != nil {
		t.Fatalf("probing the new path: %v", err)
	}
	if err := p.Switch(); err != nil {
		t.Fatalf("switching to the new path: %v", err)
	}
	return udp.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestClientThatMovesIsHeldToTheRules: a client that migrates to an
// address its ingress does not allow is disconnected; one that moves to an
// allowed address stays, and its peers learn its new observed address.
func TestClientThatMovesIsHeldToTheRules(t *testing.T) {
	t.Parallel()
	denied := netip.MustParseAddr("127.0.0.3")
	ts := startServer(t, Config{Ingresses: []Ingress{
		{Ingress: ingress.Ingress{Addr: "127.0.0.1:0", AllowAddr: func(a netip.Addr) bool { return a != denied }}},
	}})
	ctx := testContext(t)

	t.Run("to a denied address", func(t *testing.T) {
		c := ts.connect(ctx, t, goodToken, dst("moving"))
		c.waitState(t, "the first state", func(*pb.ServerState) bool { return true })
		c.migrate(t, net.IP(denied.AsSlice()))
		if aerr := c.waitClosed(t); aerr.ErrorCode != codeAuth {
			t.Fatalf("closed with %v, want the address refusal", aerr)
		}
	})

	t.Run("to an allowed address", func(t *testing.T) {
		mover := ts.connect(ctx, t, goodToken, dst("web"))
		peer := ts.connect(ctx, t, goodToken, src("web"))
		peer.waitState(t, "the destination is a peer", func(st *pb.ServerState) bool { return peerOf(st, mover) != nil })
		to := mover.migrate(t, net.IPv4(127, 0, 0, 2))
		peer.waitState(t, "the peer's candidates follow its move", func(st *pb.ServerState) bool {
			p := peerOf(st, mover)
			if p == nil || len(p.GetCandidates()) == 0 {
				return false
			}
			got, err := wire.ToAddrPort(p.GetCandidates()[0])
			return err == nil && got == to
		})
		mover.waitState(t, "the mover's observed address follows", func(st *pb.ServerState) bool {
			got, err := wire.ToAddrPort(st.GetObserved())
			return err == nil && got == to
		})
	})
}
