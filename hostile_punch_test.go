package connet_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/direct"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/simnet"
	"github.com/p2pconnet/connet/internal/testwait"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
	"google.golang.org/protobuf/encoding/protowire"
)

// Hostile input against birthday punching (internal/direct/punch.go): a
// client must not be able to aim its peers' probes, beside a healthy
// tunnel that keeps working.

// claimSymmetricNAT adds to st what clients used to send as its field 4:
// their own word that their NAT maps per destination. Servers now
// ignore it.
func claimSymmetricNAT(st *pb.ClientState) *pb.ClientState {
	claim := protowire.AppendTag(nil, 4, protowire.VarintType)
	claim = protowire.AppendVarint(claim, uint64(pb.NatMapping_NAT_MAPPING_PER_DESTINATION))
	st.ProtoReflect().SetUnknown(claim)
	return st
}

// hostileHello authenticates conn with token by hand and announces a
// source of name, with a punch secret and the claim of a symmetric NAT.
// It returns the control stream.
func hostileHello(ctx context.Context, t *testing.T, conn muxconn.Conn, token, name string) muxconn.Stream {
	t.Helper()
	stream, err := conn.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = stream.SetDeadline(d)
	}
	if err := wire.Write(stream, &pb.Hello{Token: token}); err != nil {
		t.Fatal(err)
	}
	var reply pb.HelloReply
	if err := wire.Read(stream, &reply, wire.MaxControlMessage); err != nil || reply.GetError() != nil {
		t.Fatalf("hello: %v %v", err, reply.GetError())
	}
	if err := wire.Write(stream, claimSymmetricNAT(hostileState(name))); err != nil {
		t.Fatal(err)
	}
	return stream
}

// hostileState announces a source of name with a punch secret.
func hostileState(name string) *pb.ClientState {
	return &pb.ClientState{
		Endpoints:   []*pb.Endpoint{{Name: name, Role: pb.Role_ROLE_SOURCE}},
		PunchSecret: bytes.Repeat([]byte{0x5a}, wire.PunchSecretLen),
	}
}

// peersOf counts the peers of c's destination name.
func peersOf(c *connet.Client, name string) int {
	for _, d := range c.Status().Destinations {
		if d.Name == name {
			return len(d.Peers)
		}
	}
	return 0
}

// TestHostilePunchClaim: a client that claims a symmetric NAT (which no
// relay saw) gets not one probe from a peer behind a cone NAT, which
// would be the easy side of a birthday punch and spray up to 2048 probes
// at the claimant's address. Beside it, the peer's healthy tunnel to an
// honest source keeps working.
func TestHostilePunchClaim(t *testing.T) {
	simTest(t, func(t *testing.T) {
		w := newPunchWorld(t, simnet.EndpointIndependent, simnet.EndpointIndependent, simnet.AddressAndPortDependent, false)
		if !testwait.Until(time.Minute, func() bool { return hasDirect(pathKinds(w.sc)) }) {
			t.Fatalf("no direct path between the honest clients after a minute: paths %v", pathKinds(w.sc))
		}
		simEcho(t, w.src, "healthy before")
		if got := w.dc.Status().Control.NAT; got != "independent" {
			t.Fatalf("the destination's NAT is %q, want independent: it would be no easy side", got)
		}
		dm0, _, _ := w.dlog.counts()

		pc, err := w.net.NAT("198.51.100.3", simnet.EndpointIndependent, simnet.AddressAndPortDependent, 0).Host("10.3.0.2").ListenPacket(context.Background(), "udp", ":19192")
		if err != nil {
			t.Fatal(err)
		}
		tr := &quic.Transport{Conn: pc}
		defer func() { _ = tr.Close(); _ = pc.Close() }()
		id, err := identity.Generate("hostile")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		qc, err := tr.Dial(ctx, &net.UDPAddr{IP: net.ParseIP(simServerHost), Port: 19190}, &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{id.Cert},
			RootCAs:      w.srv.cert.Pool,
			ServerName:   simServerHost,
			NextProtos:   []string{wire.ALPNControl},
		}, tuning.QUIC(0))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = qc.CloseWithError(0, "test over") }()
		hostileHello(ctx, t, muxconn.FromQUIC(qc), "token-s", "echo")
		if !testwait.Until(time.Minute, func() bool { return peersOf(w.dc, "echo") == 2 }) {
			t.Fatal("the destination never learnt of the hostile source")
		}
		time.Sleep(time.Minute)
		if dm, _, _ := w.dlog.counts(); dm != dm0 {
			t.Fatalf("the destination sent %d probes after a client claimed a symmetric NAT", dm-dm0)
		}
		simEcho(t, w.src, "healthy after")
	})
}

// probeCounter opens real UDP sockets that count the punch probes sent
// on them and drop them: whatever they aim at, none leaves the test.
type probeCounter struct {
	osNetwork
	probes atomic.Int64
}

func (p *probeCounter) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	pc, err := p.osNetwork.ListenPacket(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &probeCountingConn{PacketConn: pc, counter: p}, nil
}

type probeCountingConn struct {
	net.PacketConn
	counter *probeCounter
}

func (c *probeCountingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if direct.IsProbe(b) {
		c.counter.probes.Add(1)
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

// TestHostilePunchOverTCP: a client connected to the control server over
// TCP has no UDP mapping there (its address may be an HTTP proxy's), so
// it is never probed: not even with a relay's signed word that it saw the
// client's UDP socket at another port of that address, which over QUIC
// would mean a symmetric NAT (and make a peer behind a cone spray probes
// at the address). Beside it, a healthy tunnel keeps working. Real
// sockets on loopback; the peer's probes are counted and dropped.
func TestHostilePunchOverTCP(t *testing.T) {
	h := newHarness(t, with(connet.ServerRelayIngress(connet.RelayIngress{Addr: "127.0.0.1:0", Hostports: []string{"127.0.0.1:0"}})))
	healthy := startHealthyTunnel(t, h)
	counter := &probeCounter{}
	dc := h.connect("token-d", connet.ClientNetwork(counter))
	dst, err := dc.Destination(context.Background(), connet.NewDestinationConfig("victim"))
	if err != nil {
		t.Fatal(err)
	}
	go echo(dst)
	testwait.For(t, 10*time.Second, func() bool { return dc.Status().Control.NAT == "independent" }, "the destination to learn its NAT maps independently (it would be the easy side)")

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	id, err := identity.Generate("hostile")
	if err != nil {
		t.Fatal(err)
	}
	// The server's TCP listener is at the port of its UDP one.
	conn, err := muxconn.DialTCP(ctx, h.addr, &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.Cert},
		RootCAs:      h.cert.Pool,
		ServerName:   "localhost",
		NextProtos:   []string{wire.ALPNControl},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.CloseWithError(0, "test over") }()
	stream := hostileHello(ctx, t, conn, "token-s", "victim")
	var st pb.ServerState
	for len(st.GetRelays()) == 0 || st.GetGrant() == nil {
		if err := wire.Read(stream, &st, wire.MaxControlMessage); err != nil {
			t.Fatalf("waiting for a relay and a grant: %v", err)
		}
	}
	observed := relayObservation(ctx, t, id, st.GetRelays()[0], st.GetGrant())
	withObservation := hostileState("victim")
	withObservation.RelayObservations = []*pb.SignedObservation{observed}
	if err := wire.Write(stream, claimSymmetricNAT(withObservation)); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, func() bool { return peersOf(dc, "victim") == 1 }, "the destination to learn of the client over TCP")
	// An easy side's attempt starts half a second after it learns of the
	// peer and sends 250 probes a second.
	time.Sleep(3 * time.Second)
	if n := counter.probes.Load(); n != 0 {
		t.Fatalf("the destination sent %d probes towards a client connected over TCP", n)
	}
	healthy.stop(t)
}

// relayObservation connects to relay over QUIC from a fresh socket as
// the client of id, presents grant, and returns where the relay says it
// saw the client, signed.
func relayObservation(ctx context.Context, t *testing.T, id *identity.Identity, relay *pb.Relay, grant *pb.SignedGrant) *pb.SignedObservation {
	t.Helper()
	addr, err := net.ResolveUDPAddr("udp", relay.GetHostports()[0])
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() { _ = tr.Close(); _ = udp.Close() })
	conn, err := tr.Dial(ctx, addr, id.PinnedClientConfig(relay.GetCertificate(), wire.ALPNRelay), tuning.QUIC(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.CloseWithError(0, "test over") })
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.Write(s, grant); err != nil {
		t.Fatal(err)
	}
	var reply pb.RelayReply
	if err := wire.Read(s, &reply, wire.MaxControlMessage); err != nil || reply.GetError() != nil {
		t.Fatalf("relay reply: %v %v", err, reply.GetError())
	}
	if reply.GetSignedObserved() == nil {
		t.Fatal("the relay did not say where it saw the client")
	}
	return reply.GetSignedObserved()
}
