package control

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/netip"
	"testing"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/observation"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestClassifyNAT(t *testing.T) {
	ap := netip.MustParseAddrPort
	ctl := ap("198.51.100.1:4000")
	for _, tc := range []struct {
		name    string
		control netip.AddrPort
		others  []netip.AddrPort
		want    pb.NatMapping
	}{
		{"no relay", ctl, nil, pb.NatMapping_NAT_MAPPING_UNKNOWN},
		{"not connected", netip.AddrPort{}, []netip.AddrPort{ctl}, pb.NatMapping_NAT_MAPPING_UNKNOWN},
		{"same mapping", ctl, []netip.AddrPort{ctl}, pb.NatMapping_NAT_MAPPING_INDEPENDENT},
		{"new port per destination", ctl, []netip.AddrPort{ap("198.51.100.1:4001")}, pb.NatMapping_NAT_MAPPING_PER_DESTINATION},
		{"relay reached another way", ctl, []netip.AddrPort{ap("10.0.0.2:4000")}, pb.NatMapping_NAT_MAPPING_UNKNOWN},
		{"one relay of each", ctl, []netip.AddrPort{ctl, ap("198.51.100.1:5000")}, pb.NatMapping_NAT_MAPPING_PER_DESTINATION},
		{"mapped v4", ctl, []netip.AddrPort{ap("[::ffff:198.51.100.1]:4000")}, pb.NatMapping_NAT_MAPPING_INDEPENDENT},
	} {
		if got := classifyNAT(tc.control, tc.others); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func newTestIdentity(t *testing.T) *identity.Identity {
	t.Helper()
	id, err := identity.Generate("test")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// addRelay offers a relay (an identity alone: nothing listens) to the
// server's clients until the test ends.
func (ts *testServer) addRelay(t *testing.T) *identity.Identity {
	t.Helper()
	relay := newTestIdentity(t)
	t.Cleanup(ts.srv.AddRelay(relay.ID, relay.DER(), []string{"127.0.0.1:1"}))
	return relay
}

func signObservation(t *testing.T, relay *identity.Identity, client identity.ID, at netip.AddrPort) *pb.SignedObservation {
	t.Helper()
	so, err := observation.Sign(relay, client, at)
	if err != nil {
		t.Fatal(err)
	}
	return so
}

// withClaimedNAT adds to st what clients used to send as field 4: their
// own word on how their NAT maps.
func withClaimedNAT(st *pb.ClientState, nat pb.NatMapping) *pb.ClientState {
	st.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 4, protowire.VarintType), uint64(nat)))
	return st
}

// otherPort is a at another port.
func otherPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr(), a.Port()^1)
}

// TestServerDecidesNAT: how a client's NAT maps is what the server works
// out from where it and the relays see the client, whatever the client
// claims: a claim of a symmetric NAT alone leaves it unknown (so no peer
// probes the client), an observation signed by an offered relay at
// another port of the same address makes it per-destination, one at the
// same port independent, and one of a relay the server does not offer
// counts for nothing. The client and its peers are told the same.
func TestServerDecidesNAT(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{})
	relay := ts.addRelay(t)
	ctx := testContext(t)
	secret := bytes.Repeat([]byte{0xab}, wire.PunchSecretLen)
	d := ts.dial(ctx, t)
	if reply := d.hello(t, goodToken); reply.GetError() != nil {
		t.Fatal(reply.GetError())
	}
	s := ts.connect(ctx, t, goodToken, src("x"))
	for _, tc := range []struct {
		name         string
		observations []*pb.SignedObservation
		want         pb.NatMapping
	}{
		{"claim alone", nil, pb.NatMapping_NAT_MAPPING_UNKNOWN},
		{"relay saw another port", []*pb.SignedObservation{signObservation(t, relay, d.id.ID, otherPort(d.observed()))}, pb.NatMapping_NAT_MAPPING_PER_DESTINATION},
		{"relay saw the same port", []*pb.SignedObservation{signObservation(t, relay, d.id.ID, d.observed())}, pb.NatMapping_NAT_MAPPING_INDEPENDENT},
		{"relay not offered", []*pb.SignedObservation{signObservation(t, newTestIdentity(t), d.id.ID, otherPort(d.observed()))}, pb.NatMapping_NAT_MAPPING_UNKNOWN},
	} {
		d.write(t, withClaimedNAT(&pb.ClientState{Endpoints: []*pb.Endpoint{dst("x")}, PunchSecret: secret,
			RelayObservations: tc.observations}, pb.NatMapping_NAT_MAPPING_PER_DESTINATION))
		st := s.waitState(t, tc.name+": the destination's new state is known", func(st *pb.ServerState) bool {
			p := peerOf(st, d)
			return p != nil && p.GetNatMapping() == tc.want
		})
		p := peerOf(st, d)
		if got, err := wire.ToAddrPort(p.GetObserved()); err != nil || got != d.observed() {
			t.Fatalf("%s: peer observed %v (%v), want %v", tc.name, got, err, d.observed())
		}
		if !bytes.Equal(p.GetPunchSecret(), secret) {
			t.Fatalf("%s: peer secret %x, want what it announced", tc.name, p.GetPunchSecret())
		}
		st = d.waitState(t, tc.name+": the client is told its NAT", func(st *pb.ServerState) bool {
			return st.GetNatMapping() == tc.want && peerOf(st, s) != nil
		})
		// The source said nothing: its peer entry says unknown, no secret.
		if p := peerOf(st, s); p.GetNatMapping() != pb.NatMapping_NAT_MAPPING_UNKNOWN || len(p.GetPunchSecret()) != 0 {
			t.Fatalf("a silent peer shows NAT %v, secret %x", p.GetNatMapping(), p.GetPunchSecret())
		}
	}
}

// TestTCPClientIsNoPunchTarget: a client that reaches the server over TCP
// has no UDP mapping there (its address may be a proxy's), so peers get
// no observed address of it, no candidate at its TCP address, and no NAT
// kind, even with a relay's signed word that it saw the client's UDP
// socket at another port of the same address (which over QUIC would mean
// a symmetric NAT): nothing for them to dial or spray probes at.
func TestTCPClientIsNoPunchTarget(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{Ingresses: []Ingress{{Ingress: ingress.Ingress{Addr: "127.0.0.1:0", TCP: true}}}})
	relay := ts.addRelay(t)
	ctx := testContext(t)
	tcpAddrs := ts.srv.TCPAddrs(ctx)
	if len(tcpAddrs) != 1 {
		t.Fatalf("TCP ingresses %v, want one", tcpAddrs)
	}
	id := newTestIdentity(t)
	conn, err := muxconn.DialTCP(ctx, tcpAddrs[0].String(), &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.Cert},
		RootCAs:      ts.cert.Pool,
		ServerName:   "localhost",
		NextProtos:   []string{wire.ALPNControl},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.CloseWithError(0, "test over") })
	stream, err := conn.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = stream.SetDeadline(d)
	}
	if err := wire.Write(stream, &pb.Hello{Token: goodToken}); err != nil {
		t.Fatal(err)
	}
	var reply pb.HelloReply
	if err := wire.Read(stream, &reply, wire.MaxControlMessage); err != nil || reply.GetError() != nil {
		t.Fatalf("hello over TCP: %v %v", err, reply.GetError())
	}
	tcpObserved := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	if got, _ := wire.ToAddrPort(reply.GetObserved()); got != tcpObserved {
		t.Fatalf("observed %v, want the TCP connection's %v", got, tcpObserved)
	}
	lan := netip.MustParseAddrPort("192.0.2.10:5000")
	if err := wire.Write(stream, withClaimedNAT(&pb.ClientState{
		Endpoints:         []*pb.Endpoint{dst("x")},
		LocalAddrs:        []*pb.AddrPort{wire.FromAddrPort(lan)},
		PunchSecret:       bytes.Repeat([]byte{0xab}, wire.PunchSecretLen),
		RelayObservations: []*pb.SignedObservation{signObservation(t, relay, id.ID, otherPort(tcpObserved))},
	}, pb.NatMapping_NAT_MAPPING_PER_DESTINATION)); err != nil {
		t.Fatal(err)
	}

	s := ts.connect(ctx, t, goodToken, src("x"))
	st := s.waitState(t, "the TCP client is a peer", func(st *pb.ServerState) bool {
		for _, p := range st.GetPeers() {
			if bytes.Equal(p.GetId(), id.ID[:]) {
				return true
			}
		}
		return false
	})
	p := st.GetPeers()[0]
	if p.GetObserved() != nil || p.GetNatMapping() != pb.NatMapping_NAT_MAPPING_UNKNOWN {
		t.Fatalf("a client over TCP has observed %v and NAT %v for its peers, want neither", p.GetObserved(), p.GetNatMapping())
	}
	if len(p.GetCandidates()) != 1 {
		t.Fatalf("a client over TCP has candidates %v, want its LAN address alone", p.GetCandidates())
	}
	if got, _ := wire.ToAddrPort(p.GetCandidates()[0]); got != lan {
		t.Fatalf("a client over TCP has candidate %v, want its LAN address %v", got, lan)
	}
	// The client itself is told no NAT kind either.
	for {
		var own pb.ServerState
		if err := wire.Read(stream, &own, wire.MaxControlMessage); err != nil {
			t.Fatalf("reading the TCP client's state: %v", err)
		}
		if own.GetNatMapping() != pb.NatMapping_NAT_MAPPING_UNKNOWN {
			t.Fatalf("a client over TCP is told its NAT is %v", own.GetNatMapping())
		}
		if len(own.GetPeers()) > 0 {
			break
		}
	}
}
