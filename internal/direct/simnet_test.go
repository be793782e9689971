package direct

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/quicdial"
	"github.com/p2pconnet/connet/internal/simnet"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/quic-go/quic-go"
)

// These tests punch through simulated NATs (internal/simnet) in process.
// Each runs in a synctest bubble: quic-go's timers, the node's retries and
// the network's latency all run on the bubble's clock, so a test that
// waits a simulated minute for a punch that cannot succeed takes
// milliseconds.
//
// The control server's part (telling each peer the other's certificate
// and candidate addresses) is played by the test: a rendezvous host on the
// internet learns each client's NAT mapping from a datagram sent on the
// client's own socket, as the control server learns it from the control
// connection on that socket.

// simLatency is the one-way delay of every datagram: enough that a
// handshake takes measurable (virtual) time.
const simLatency = 10 * time.Millisecond

// simClient is one client's direct layer on a simulated host.
type simClient struct {
	id       *identity.Identity
	tr       *quic.Transport
	reg      *peer.Registry
	private  netip.AddrPort
	observed netip.AddrPort
	paths    chan *netpath.QUIC
}

// newSimClient binds the client's socket on h, starts its node, and learns
// its public mapping from the rendezvous socket rv.
func newSimClient(t *testing.T, h *simnet.Host, rv net.PacketConn, handshake time.Duration) *simClient {
	t.Helper()
	pc, err := h.ListenPacket(context.Background(), "udp", ":19192")
	if err != nil {
		t.Fatal(err)
	}
	c := &simClient{
		id:      newIdentity(t),
		tr:      &quic.Transport{Conn: pc},
		private: pc.LocalAddr().(*net.UDPAddr).AddrPort(),
		paths:   make(chan *netpath.QUIC, 8),
	}
	conf := tuning.QUIC(handshake)
	node := &Node{
		Transport:   c.tr,
		Identity:    c.id,
		Config:      conf,
		Logger:      slog.New(slog.DiscardHandler),
		AllowDirect: func(peer.State) bool { return true },
		OnPath:      func(_ *peer.Peer, q *netpath.QUIC) { c.paths <- q },
	}
	c.reg = peer.NewRegistry(time.Minute, node.Maintain)
	node.Registry = c.reg
	ln, err := c.tr.Listen(c.id.PinnedServerConfig(wire.ALPNPeer, c.reg.Known, 2*time.Second), conf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = node.Accept(ctx, ln)
	}()
	t.Cleanup(func() {
		c.reg.Close()
		cancel()
		<-done
		_ = ln.Close()
		_ = c.tr.Close()
		_ = pc.Close()
	})

	// A first byte without the QUIC fixed bit: quic-go sends it as is, and
	// the rendezvous sees the NAT's mapping for this socket.
	if _, err := c.tr.WriteTo([]byte{0}, rv.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	_ = rv.SetReadDeadline(time.Now().Add(time.Second))
	if _, from, err := rv.ReadFrom(buf); err != nil {
		t.Fatalf("rendezvous: %v", err)
	} else {
		c.observed = from.(*net.UDPAddr).AddrPort()
	}
	return c
}

// introduce tells each client about the other, as the control server
// would: certificate and candidates (observed mapping first, then the
// private address).
func introduce(a, b *simClient) {
	info := func(c *simClient) peer.Info {
		return peer.Info{
			ID:         c.id.ID,
			Cert:       c.id.DER(),
			Candidates: []netip.AddrPort{c.observed, c.private},
		}
	}
	a.reg.Apply([]peer.Info{info(b)})
	b.reg.Apply([]peer.Info{info(a)})
}

// simWorld is a network with a rendezvous host and two NATed clients.
type simWorld struct {
	net  *simnet.Network
	a, b *simClient
}

func newSimWorld(t *testing.T, aMap, aFilter, bMap, bFilter simnet.Behaviour) *simWorld {
	t.Helper()
	n := simnet.New()
	n.SetLatency(simLatency)
	t.Cleanup(n.Close)
	rv, err := n.Host("203.0.113.1").ListenPacket(context.Background(), "udp", ":3478")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rv.Close() })
	natA := n.NAT("198.51.100.1", aMap, aFilter, 0)
	natB := n.NAT("198.51.100.2", bMap, bFilter, 0)
	return &simWorld{
		net: n,
		a:   newSimClient(t, natA.Host("10.1.0.2"), rv, 2*time.Second),
		b:   newSimClient(t, natB.Host("10.2.0.2"), rv, 2*time.Second),
	}
}

// waitPath waits for c's first direct path, or gives up after d of the
// bubble's time.
func waitPath(c *simClient, d time.Duration) *netpath.QUIC {
	select {
	case q := <-c.paths:
		return q
	case <-time.After(d):
		return nil
	}
}

// TestPunchThroughConeNATs: two clients behind cone NATs (endpoint-
// independent mapping) punch a direct path to each other's public mapping,
// for each filtering behaviour, including the strictest
// (port-restricted cone), where each side's first packets are dropped
// until the other side has sent its own.
func TestPunchThroughConeNATs(t *testing.T) {
	for _, filter := range []simnet.Behaviour{simnet.EndpointIndependent, simnet.AddressDependent, simnet.AddressAndPortDependent} {
		t.Run(filter.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newSimWorld(t, simnet.EndpointIndependent, filter, simnet.EndpointIndependent, filter)
				start := time.Now()
				introduce(w.a, w.b)
				qa, qb := waitPath(w.a, time.Minute), waitPath(w.b, time.Minute)
				if qa == nil || qb == nil {
					t.Fatalf("no direct path: a=%v b=%v, stats %+v", qa, qb, w.net.Stats())
				}
				// The path goes to the peer's NAT, not to its private
				// address (unreachable across the internet).
				if got := qa.RemoteAddr().(*net.UDPAddr).AddrPort(); got != w.b.observed {
					t.Errorf("a's path goes to %v, want b's mapping %v", got, w.b.observed)
				}
				if got := qb.RemoteAddr().(*net.UDPAddr).AddrPort(); got != w.a.observed {
					t.Errorf("b's path goes to %v, want a's mapping %v", got, w.a.observed)
				}
				t.Logf("punched in %v of simulated time; stats %+v", time.Since(start), w.net.Stats())
			})
		})
	}
}

// TestNoPunchSymmetricVsPortRestricted: a client behind a symmetric NAT
// uses a fresh external port towards the peer, which the peer's
// port-restricted cone NAT never saw it send to, and the peer's packets go
// to a mapping the symmetric NAT opened for the rendezvous only: neither
// direction gets in, as the NAT lab shows on real kernels. The node keeps
// retrying with backoff for a simulated minute without a path, and the
// NATs' filtering is what stopped it.
func TestNoPunchSymmetricVsPortRestricted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t,
			simnet.AddressAndPortDependent, simnet.AddressAndPortDependent, // symmetric
			simnet.EndpointIndependent, simnet.AddressAndPortDependent, // port-restricted cone
		)
		introduce(w.a, w.b)
		if q := waitPath(w.a, time.Minute); q != nil {
			t.Fatalf("a got a direct path to %v through a symmetric NAT", q.RemoteAddr())
		}
		select {
		case q := <-w.b.paths:
			t.Fatalf("b got a direct path to %v", q.RemoteAddr())
		default:
		}
		if st := w.net.Stats(); st.Filtered == 0 {
			t.Fatalf("no datagram was filtered (%+v): the punch failed for another reason", st)
		}
	})
}

// TestPunchSymmetricVsFullCone: the same symmetric NAT does get a path to
// a peer whose NAT filters nothing: its packets reach the peer from the
// fresh port, and the peer answers to that port. This is the control case
// for the test above: the symmetric NAT alone is not what fails.
func TestPunchSymmetricVsFullCone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t,
			simnet.AddressAndPortDependent, simnet.AddressAndPortDependent,
			simnet.EndpointIndependent, simnet.EndpointIndependent,
		)
		introduce(w.a, w.b)
		q := waitPath(w.a, time.Minute)
		if q == nil {
			t.Fatalf("no direct path; stats %+v", w.net.Stats())
		}
		if got := q.RemoteAddr().(*net.UDPAddr).AddrPort(); got != w.b.observed {
			t.Errorf("a's path goes to %v, want b's mapping %v", got, w.b.observed)
		}
	})
}

// TestDeadCandidateSimnet: quicdial.Any over the simulated network, with a
// candidate that swallows packets listed before the live one and a
// handshake timeout of an hour. On the bubble's clock the connection must
// take a few round trips of simLatency, not the dead candidate's timeout:
// candidates are dialed at once, not in turn.
func TestDeadCandidateSimnet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := simnet.New()
		n.SetLatency(simLatency)
		defer n.Close()
		client, server := newIdentity(t), newIdentity(t)

		srvPC, _ := n.Host("203.0.113.10").ListenPacket(context.Background(), "udp", ":443")
		srvTr := &quic.Transport{Conn: srvPC}
		defer srvTr.Close()
		known := func(_ context.Context, id identity.ID) bool { return id == client.ID }
		ln, err := srvTr.Listen(server.PinnedServerConfig(wire.ALPNPeer, known, time.Second), tuning.QUIC(0))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept(context.Background())
				if err != nil {
					return
				}
				defer c.CloseWithError(0, "")
			}
		}()
		// A bound socket nobody reads: datagrams arrive and vanish.
		dead, _ := n.Host("203.0.113.20").ListenPacket(context.Background(), "udp", ":443")
		defer dead.Close()

		cliPC, _ := n.Host("203.0.113.30").ListenPacket(context.Background(), "udp", ":0")
		cliTr := &quic.Transport{Conn: cliPC}
		defer cliTr.Close()

		start := time.Now()
		live := srvPC.LocalAddr().(*net.UDPAddr).AddrPort()
		candidates := []netip.AddrPort{dead.LocalAddr().(*net.UDPAddr).AddrPort(), live}
		conn, err := quicdial.Any(context.Background(), cliTr, candidates, client.PinnedClientConfig(server.DER(), wire.ALPNPeer), tuning.QUIC(time.Hour), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		defer conn.CloseWithError(0, "")
		if got := conn.RemoteAddr().(*net.UDPAddr).AddrPort(); got != live {
			t.Fatalf("connected to %v, want %v", got, live)
		}
		// A QUIC handshake is about two round trips (4 × simLatency); allow
		// for a lost-packet timer but not for anything near the timeout.
		if elapsed > time.Second {
			t.Fatalf("handshake took %v of simulated time: the dead candidate delayed it", elapsed)
		}
		t.Logf("connected in %v of simulated time", elapsed)
	})
}

// TestPunchWithLoss: with 40% of all datagrams lost (after the
// rendezvous), port-restricted cone NATs on both sides still get a direct
// path: quic-go's retransmissions and the node's retries cover the loss.
func TestPunchWithLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, simnet.EndpointIndependent, simnet.AddressAndPortDependent, simnet.EndpointIndependent, simnet.AddressAndPortDependent)
		w.net.SetLoss(0.4)
		start := time.Now()
		introduce(w.a, w.b)
		if q := waitPath(w.a, 5*time.Minute); q == nil {
			t.Fatalf("no direct path; stats %+v", w.net.Stats())
		}
		if w.net.Stats().Lost == 0 {
			t.Fatal("nothing was lost: the test proves nothing")
		}
		t.Logf("punched in %v of simulated time; stats %+v", time.Since(start), w.net.Stats())
	})
}
