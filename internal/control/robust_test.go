package control

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
	"google.golang.org/protobuf/proto"
)

// testTimeout bounds every wait of a test; a healthy run needs a fraction.
const testTimeout = 15 * time.Second

const goodToken = "good-token"

// testServer is a control server on loopback.
type testServer struct {
	srv   *Server
	cert  *testcert.Cert
	addrs []*net.UDPAddr
}

// startServer runs a server for cfg until the test ends. Without ingresses
// it gets one on 127.0.0.1:0; without tokens it accepts goodToken.
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	cert, err := testcert.New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Ingresses) == 0 {
		cfg.Ingresses = []Ingress{{Ingress: ingress.Ingress{Addr: "127.0.0.1:0"}}}
	}
	for i := range cfg.Ingresses {
		cfg.Ingresses[i].Cert = cert.TLS
	}
	if len(cfg.Tokens) == 0 {
		cfg.Tokens = []Token{NewToken(goodToken)}
	}
	cfg.QUIC = tuning.QUIC(0)
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(testTimeout):
			t.Error("server did not stop")
		}
	})
	actx, acancel := context.WithTimeout(context.Background(), testTimeout)
	defer acancel()
	ts := &testServer{srv: srv, cert: cert}
	for _, a := range srv.Addrs(actx) {
		ts.addrs = append(ts.addrs, a.(*net.UDPAddr))
	}
	if len(ts.addrs) != len(cfg.Ingresses) {
		t.Fatalf("server bound %d of %d ingresses", len(ts.addrs), len(cfg.Ingresses))
	}
	return ts
}

// rawClient speaks the control protocol by hand, so tests can send what a
// real client never would.
type rawClient struct {
	ctx    context.Context
	id     *identity.Identity
	tr     *quic.Transport
	conn   *quic.Conn
	stream *quic.Stream
}

// dialIngress opens a QUIC connection to ingress i and one stream, without
// sending anything yet.
func (ts *testServer) dialIngress(ctx context.Context, t *testing.T, i int) (*rawClient, error) {
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
	tlsConf := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.Cert},
		RootCAs:      ts.cert.Pool,
		ServerName:   "localhost",
		NextProtos:   []string{wire.ALPNControl},
	}
	c := &rawClient{ctx: ctx, id: id, tr: tr}
	c.conn, err = tr.Dial(ctx, ts.addrs[i], tlsConf, tuning.QUIC(0))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.conn.CloseWithError(0, "test over") })
	if c.stream, err = c.conn.OpenStreamSync(ctx); err != nil {
		t.Fatal(err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = c.stream.SetDeadline(d)
	}
	return c, nil
}

func (ts *testServer) dial(ctx context.Context, t *testing.T) *rawClient {
	t.Helper()
	c, err := ts.dialIngress(ctx, t, 0)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

// hello sends Hello and returns the server's reply.
func (c *rawClient) hello(t *testing.T, token string) *pb.HelloReply {
	t.Helper()
	c.write(t, &pb.Hello{Token: token, Metadata: "meta-" + token, BuildVersion: "test"})
	var reply pb.HelloReply
	if err := wire.Read(c.stream, &reply, wire.MaxControlMessage); err != nil {
		t.Fatalf("reading HelloReply: %v", err)
	}
	return &reply
}

func (c *rawClient) write(t *testing.T, m proto.Message) {
	t.Helper()
	if err := wire.Write(c.stream, m); err != nil {
		t.Fatalf("write %T: %v", m, err)
	}
}

// connect dials, authenticates with token and announces endpoints.
func (ts *testServer) connect(ctx context.Context, t *testing.T, token string, endpoints ...*pb.Endpoint) *rawClient {
	t.Helper()
	c := ts.dial(ctx, t)
	if reply := c.hello(t, token); reply.GetError() != nil {
		t.Fatalf("hello refused: %v", wire.FromPB(reply.GetError()))
	}
	c.write(t, &pb.ClientState{Endpoints: endpoints})
	return c
}

// waitState reads server states until one satisfies ok and returns it.
func (c *rawClient) waitState(t *testing.T, what string, ok func(*pb.ServerState) bool) *pb.ServerState {
	t.Helper()
	for {
		var st pb.ServerState
		if err := wire.Read(c.stream, &st, wire.MaxControlMessage); err != nil {
			t.Fatalf("waiting for a state where %s: %v", what, err)
		}
		if ok(&st) {
			return &st
		}
	}
}

// waitClosed waits for the server to close the connection and returns the
// application error it closed with.
func (c *rawClient) waitClosed(t *testing.T) *quic.ApplicationError {
	t.Helper()
	select {
	case <-c.conn.Context().Done():
	case <-c.ctx.Done():
		t.Fatal("the server did not close the connection")
	}
	cause := context.Cause(c.conn.Context())
	var aerr *quic.ApplicationError
	if !errors.As(cause, &aerr) || !aerr.Remote {
		t.Fatalf("connection ended with %v, want an application error from the server", cause)
	}
	return aerr
}

func (c *rawClient) leave() { _ = c.conn.CloseWithError(0, "bye") }

// observed is the address the server sees this client at.
func (c *rawClient) observed() netip.AddrPort {
	return c.tr.Conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func dst(name string) *pb.Endpoint { return &pb.Endpoint{Name: name, Role: pb.Role_ROLE_DESTINATION} }
func src(name string) *pb.Endpoint { return &pb.Endpoint{Name: name, Role: pb.Role_ROLE_SOURCE} }

func peerOf(st *pb.ServerState, c *rawClient) *pb.Peer {
	for _, p := range st.GetPeers() {
		if bytes.Equal(p.GetId(), c.id.ID[:]) {
			return p
		}
	}
	return nil
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestBadTokenIsRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{})
	ctx := testContext(t)
	c := ts.dial(ctx, t)
	reply := c.hello(t, "wrong")
	if reply.GetError().GetCode() != pb.ErrorCode_ERROR_CODE_AUTH_FAILED {
		t.Fatalf("bad token: reply %v, want ERROR_CODE_AUTH_FAILED", reply)
	}
	if reply.GetObserved() != nil || len(reply.GetClientId()) != 0 {
		t.Fatalf("a refused client learned %v", reply)
	}
	// The server ends the stream after the reply and, if the client does
	// not leave, closes the connection as an authentication failure.
	if _, err := c.stream.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the refusal the stream gave %v, want EOF", err)
	}
	if aerr := c.waitClosed(t); aerr.ErrorCode != codeAuth {
		t.Fatalf("refused client closed with %v, want code %d", aerr, codeAuth)
	}
}

func TestTokenAddrRestriction(t *testing.T) {
	t.Parallel()
	tok := NewToken(goodToken)
	tok.AllowAddr = func(a netip.Addr) bool { return !a.IsLoopback() }
	ts := startServer(t, Config{Tokens: []Token{tok}})
	ctx := testContext(t)
	c := ts.dial(ctx, t)
	reply := c.hello(t, goodToken)
	if reply.GetError().GetCode() != pb.ErrorCode_ERROR_CODE_ADDR_FORBIDDEN {
		t.Fatalf("token for other addresses: reply %v, want ERROR_CODE_ADDR_FORBIDDEN", reply)
	}
	c.leave()
}

// TestMisbehavingClientsAffectOnlyThemselves runs clients that violate the
// protocol in different ways next to a well-behaved one. Each violation
// ends the violator's connection with an application error; the good
// client stays connected and keeps learning of peers.
func TestMisbehavingClientsAffectOnlyThemselves(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{})
	ctx := testContext(t)
	good := ts.connect(ctx, t, goodToken, src("probe"))
	good.waitState(t, "the first state arrived", func(*pb.ServerState) bool { return true })
	relay := ts.addRelay(t)
	othersObservation := signObservation(t, relay, identity.ID{1}, good.observed())
	forged := signObservation(t, newTestIdentity(t), identity.ID{1}, good.observed())
	forged.RelayId = relay.ID[:]

	manyEndpoints := make([]*pb.Endpoint, maxEndpoints+1)
	for i := range manyEndpoints {
		manyEndpoints[i] = dst(fmt.Sprintf("e%d", i))
	}
	manyAddrs := make([]*pb.AddrPort, maxLocalAddrs+1)
	for i := range manyAddrs {
		manyAddrs[i] = &pb.AddrPort{Ip: []byte{10, 0, byte(i >> 8), byte(i)}, Port: 1000}
	}
	manyRelays := make([][]byte, maxRelays+1)
	for i := range manyRelays {
		manyRelays[i] = bytes.Repeat([]byte{byte(i)}, 32)
	}
	state := func(st *pb.ClientState) []byte {
		var buf bytes.Buffer
		if err := wire.Write(&buf, st); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	for _, tc := range []struct {
		name string
		// hello is sent first unless empty; then the raw bytes.
		hello bool
		raw   []byte
		// code is the close code the server must use (-1: any).
		code int64
	}{
		{"garbage instead of hello", false, []byte("hello world, this is not protobuf"), int64(codeProtocol)},
		{"undecodable hello", false, []byte{0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff}, int64(codeProtocol)},
		{"oversized hello", false, []byte{0x7f, 0xff, 0xff, 0xff, 0}, int64(codeProtocol)},
		{"oversized state", true, []byte{0, 0x40, 0, 1}, int64(codeProtocol)},
		// Undecodable states end the connection too; with which code is
		// TestUndecodableStateIsProtocolError's business.
		{"undecodable state", true, []byte{0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff}, -1},
		{"invalid local address", true, state(&pb.ClientState{LocalAddrs: []*pb.AddrPort{{Ip: []byte{1, 2, 3}, Port: 80}}}), int64(codeProtocol)},
		{"local address without port", true, state(&pb.ClientState{LocalAddrs: []*pb.AddrPort{{Ip: []byte{1, 2, 3, 4}}}}), int64(codeProtocol)},
		{"empty endpoint name", true, state(&pb.ClientState{Endpoints: []*pb.Endpoint{dst("ok"), dst("")}}), int64(codeProtocol)},
		{"unspecified role", true, state(&pb.ClientState{Endpoints: []*pb.Endpoint{{Name: "probe"}}}), int64(codeProtocol)},
		{"unknown role", true, state(&pb.ClientState{Endpoints: []*pb.Endpoint{{Name: "probe", Role: 7}}}), int64(codeProtocol)},
		{"duplicate endpoints", true, state(&pb.ClientState{Endpoints: []*pb.Endpoint{dst("probe"), src("x"), dst("probe")}}), int64(codeProtocol)},
		{"too many endpoints", true, state(&pb.ClientState{Endpoints: manyEndpoints}), int64(codeProtocol)},
		{"too many local addresses", true, state(&pb.ClientState{LocalAddrs: manyAddrs}), int64(codeProtocol)},
		{"too many relays", true, state(&pb.ClientState{Relays: manyRelays}), int64(codeProtocol)},
		{"too many relay observations", true, state(&pb.ClientState{RelayObservations: make([]*pb.SignedObservation, maxRelays+1)}), int64(codeProtocol)},
		{"malformed relay observation", true, state(&pb.ClientState{RelayObservations: []*pb.SignedObservation{{RelayId: []byte{1, 2, 3}}}}), int64(codeProtocol)},
		{"forged relay observation", true, state(&pb.ClientState{RelayObservations: []*pb.SignedObservation{forged}}), int64(codeProtocol)},
		{"another client's relay observation", true, state(&pb.ClientState{RelayObservations: []*pb.SignedObservation{othersObservation}}), int64(codeProtocol)},
		{"short punch secret", true, state(&pb.ClientState{PunchSecret: []byte{1, 2, 3}}), int64(codeProtocol)},
		{"long punch secret", true, state(&pb.ClientState{PunchSecret: make([]byte, 1024)}), int64(codeProtocol)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := ts.dial(ctx, t)
			if tc.hello {
				if reply := bad.hello(t, goodToken); reply.GetError() != nil {
					t.Fatalf("hello refused: %v", reply.GetError())
				}
			}
			if _, err := bad.stream.Write(tc.raw); err != nil {
				t.Fatal(err)
			}
			if aerr := bad.waitClosed(t); tc.code >= 0 && int64(aerr.ErrorCode) != tc.code {
				t.Fatalf("violator closed with %v, want code %d", aerr, tc.code)
			}

			// The good client is unaffected: it learns of a new peer.
			if err := good.conn.Context().Err(); err != nil {
				t.Fatalf("the good client's connection ended: %v", context.Cause(good.conn.Context()))
			}
			third := ts.connect(ctx, t, goodToken, dst("probe"))
			good.waitState(t, "the third client is a peer", func(st *pb.ServerState) bool { return peerOf(st, third) != nil })
			third.leave()
			good.waitState(t, "the third client is gone", func(st *pb.ServerState) bool { return peerOf(st, third) == nil })
		})
	}
}

// TestUndecodableStateIsProtocolError: a complete ClientState frame that
// does not decode is a protocol violation like an oversized one, and should
// be closed as such rather than like a normal disconnect.
func TestUndecodableStateIsProtocolError(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{})
	ctx := testContext(t)
	c := ts.dial(ctx, t)
	if reply := c.hello(t, goodToken); reply.GetError() != nil {
		t.Fatal(reply.GetError())
	}
	if _, err := c.stream.Write([]byte{0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	if aerr := c.waitClosed(t); aerr.ErrorCode != codeProtocol {
		t.Fatalf("undecodable ClientState closed with %v, want code %d (protocol violation)", aerr, codeProtocol)
	}
}

// TestPeersLearnEachOther: a destination and a source of the same name
// each learn the other with its certificate and observed address, and
// learn when it leaves.
func TestPeersLearnEachOther(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{})
	ctx := testContext(t)

	d := ts.dial(ctx, t)
	reply := d.hello(t, goodToken)
	if got, err := wire.ToAddrPort(reply.GetObserved()); err != nil || got != d.observed() {
		t.Fatalf("HelloReply observed %v (%v), want %v", got, err, d.observed())
	}
	if !bytes.Equal(reply.GetClientId(), d.id.ID[:]) {
		t.Fatalf("HelloReply client id %x, want the certificate fingerprint %x", reply.GetClientId(), d.id.ID[:])
	}
	d.write(t, &pb.ClientState{Endpoints: []*pb.Endpoint{dst("x"), dst("d-only")}})

	s := ts.dial(ctx, t)
	if reply := s.hello(t, goodToken); reply.GetError() != nil {
		t.Fatal(reply.GetError())
	}
	lan := netip.MustParseAddrPort("192.0.2.10:5000")
	s.write(t, &pb.ClientState{
		LocalAddrs: []*pb.AddrPort{wire.FromAddrPort(lan), wire.FromAddrPort(s.observed())},
		Endpoints:  []*pb.Endpoint{{Name: "x", Role: pb.Role_ROLE_SOURCE, Route: pb.Route_ROUTE_DIRECT}, src("s-only")},
	})

	check := func(st *pb.ServerState, self, other *rawClient, role pb.Role, route pb.Route, candidates ...netip.AddrPort) {
		t.Helper()
		if len(st.GetPeers()) != 1 || len(st.GetRefused()) != 0 {
			t.Fatalf("state %v, want exactly one peer and no refusals", st)
		}
		if got, _ := wire.ToAddrPort(st.GetObserved()); got != self.observed() {
			t.Fatalf("state observed %v, want %v", got, self.observed())
		}
		p := st.GetPeers()[0]
		if !bytes.Equal(p.GetId(), other.id.ID[:]) || !bytes.Equal(p.GetCertificate(), other.id.DER()) {
			t.Fatalf("peer %x with a certificate of %d bytes, want the other client", p.GetId(), len(p.GetCertificate()))
		}
		if p.GetMetadata() != "meta-"+goodToken {
			t.Fatalf("peer metadata %q", p.GetMetadata())
		}
		var got []netip.AddrPort
		for _, a := range p.GetCandidates() {
			ap, err := wire.ToAddrPort(a)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ap)
		}
		if fmt.Sprint(got) != fmt.Sprint(candidates) {
			t.Fatalf("candidates %v, want %v", got, candidates)
		}
		want := []*pb.PeerEndpoint{{Name: "x", Role: role, Route: route}}
		if len(p.GetEndpoints()) != 1 || !proto.Equal(p.GetEndpoints()[0], want[0]) {
			t.Fatalf("peer endpoints %v, want %v", p.GetEndpoints(), want)
		}
	}
	// The observed address comes first and is not repeated.
	st := d.waitState(t, "the source is a peer", func(st *pb.ServerState) bool { return len(st.GetPeers()) > 0 })
	check(st, d, s, pb.Role_ROLE_SOURCE, pb.Route_ROUTE_DIRECT, s.observed(), lan)
	st = s.waitState(t, "the destination is a peer", func(st *pb.ServerState) bool { return len(st.GetPeers()) > 0 })
	check(st, s, d, pb.Role_ROLE_DESTINATION, pb.Route_ROUTE_ANY, d.observed())

	s.leave()
	st = d.waitState(t, "the source left", func(st *pb.ServerState) bool { return peerOf(st, s) == nil })
	if len(st.GetPeers()) != 0 {
		t.Fatalf("after the source left: %v", st)
	}
}

// TestEndpointRestrictions: endpoints a token may not have are refused one
// by one, the others are kept, and refused ones are not announced.
func TestEndpointRestrictions(t *testing.T) {
	t.Parallel()
	restricted := NewToken("restricted")
	restricted.NameMatches = regexp.MustCompile(`^ok-`)
	restricted.Role = "source"
	ts := startServer(t, Config{Tokens: []Token{NewToken(goodToken), restricted}})
	ctx := testContext(t)

	observer := ts.connect(ctx, t, goodToken, dst("ok-1"), dst("bad"), src("ok-2"))
	r := ts.connect(ctx, t, "restricted", src("ok-1"), src("bad"), dst("ok-2"))

	st := r.waitState(t, "refusals arrived", func(st *pb.ServerState) bool { return len(st.GetRefused()) > 0 })
	refused := st.GetRefused()
	if len(refused) != 2 {
		t.Fatalf("refused %v, want bad (name) and ok-2 (role)", refused)
	}
	for i, want := range []*pb.Endpoint{src("bad"), dst("ok-2")} {
		got := refused[i]
		if got.GetName() != want.GetName() || got.GetRole() != want.GetRole() ||
			got.GetError().GetCode() != pb.ErrorCode_ERROR_CODE_ENDPOINT_FORBIDDEN || got.GetError().GetMessage() == "" {
			t.Fatalf("refusal %d: %v, want %s %s ENDPOINT_FORBIDDEN with a reason", i, got, wire.RoleName(want.GetRole()), want.GetName())
		}
	}

	// The observer learns r through ok-1 and, in the same state, nothing of
	// the refused endpoints although it has their counterparts.
	st = observer.waitState(t, "the restricted client is a peer", func(st *pb.ServerState) bool { return peerOf(st, r) != nil })
	eps := peerOf(st, r).GetEndpoints()
	if len(eps) != 1 || eps[0].GetName() != "ok-1" || eps[0].GetRole() != pb.Role_ROLE_SOURCE {
		t.Fatalf("observer sees the restricted client with %v, want only source ok-1", eps)
	}
	if len(st.GetRefused()) != 0 {
		t.Fatalf("observer has refusals: %v", st.GetRefused())
	}
	if p := peerOf(st, observer); p != nil {
		t.Fatalf("observer sees itself: %v", p)
	}
	// Both clients remain connected: refusals are not violations.
	for _, c := range []*rawClient{observer, r} {
		if err := c.conn.Context().Err(); err != nil {
			t.Fatalf("connection ended: %v", context.Cause(c.conn.Context()))
		}
	}
}

// TestIngressAllowAddr: an ingress whose AllowAddr rejects the client's
// address refuses the connection before the handshake; another ingress of
// the same server accepts it.
func TestIngressAllowAddr(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{Ingresses: []Ingress{
		{Ingress: ingress.Ingress{Addr: "127.0.0.1:0", AllowAddr: func(a netip.Addr) bool { return !a.IsLoopback() }}},
		{Ingress: ingress.Ingress{Addr: "127.0.0.1:0", AllowAddr: func(a netip.Addr) bool { return a.IsLoopback() }}},
	}})
	ctx := testContext(t)
	_, err := ts.dialIngress(ctx, t, 0)
	var terr *quic.TransportError
	if !errors.As(err, &terr) || terr.ErrorCode != quic.ConnectionRefused {
		t.Fatalf("dialing an ingress that rejects loopback: %v, want CONNECTION_REFUSED", err)
	}
	c, err := ts.dialIngress(ctx, t, 1)
	if err != nil {
		t.Fatalf("dialing an ingress that allows loopback: %v", err)
	}
	if reply := c.hello(t, goodToken); reply.GetError() != nil {
		t.Fatalf("hello: %v", reply.GetError())
	}
}

// TestIngressAllowAddrKeepsQUICConfig: an admitted client's connection runs
// with the server's QUIC config whether or not the ingress filters
// addresses. Observable from the client: the stream limit the server
// grants is maxControlStreams (against quic-go's default of 100, and the
// shared config's tuning.MaxStreams, which the control ingress used to
// grant: 131072 streams that nobody reads). A client within the limit
// works as ever.
func TestIngressAllowAddrKeepsQUICConfig(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{Ingresses: []Ingress{
		{Ingress: ingress.Ingress{Addr: "127.0.0.1:0"}},
		{Ingress: ingress.Ingress{Addr: "127.0.0.1:0", AllowAddr: func(netip.Addr) bool { return true }}},
	}})
	ctx := testContext(t)
	for i, name := range []string{"without AllowAddr", "with AllowAddr"} {
		c, err := ts.dialIngress(ctx, t, i)
		if err != nil {
			t.Fatal(err)
		}
		if reply := c.hello(t, goodToken); reply.GetError() != nil {
			t.Fatalf("hello: %v", reply.GetError())
		}
		// dialIngress opened one stream already.
		opened := 1
		for ; opened < 1000; opened++ {
			if _, err := c.conn.OpenStream(); err != nil {
				var lerr *quic.StreamLimitReachedError
				if !errors.As(err, &lerr) {
					t.Fatalf("ingress %s: opening stream %d: %v, want StreamLimitReachedError", name, opened+1, err)
				}
				break
			}
		}
		if opened != maxControlStreams {
			t.Errorf("ingress %s: the client could open %d streams, want %d", name, opened, maxControlStreams)
		}
		if _, err := c.conn.OpenUniStream(); err == nil {
			t.Errorf("ingress %s: the client could open a unidirectional stream", name)
		}
		// The refused streams did not disturb the control stream.
		c.write(t, &pb.ClientState{Endpoints: []*pb.Endpoint{dst("web")}})
		peer := ts.connect(ctx, t, goodToken, src("web"))
		c.waitState(t, "a peer arrived", func(st *pb.ServerState) bool { return peerOf(st, peer) != nil })
		peer.leave()
		c.leave()
	}
}

// TestAddrsOfAServerThatFailedToStart: waiting for the addresses of a
// server whose Run failed (its port is taken) ends with none, rather than
// waiting for as long as the caller's context allows.
func TestAddrsOfAServerThatFailedToStart(t *testing.T) {
	taken, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cert, err := testcert.New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{
		Ingresses: []Ingress{{Ingress: ingress.Ingress{Addr: taken.LocalAddr().String()}, Cert: cert.TLS}},
		Tokens:    []Token{NewToken(goodToken)},
		QUIC:      tuning.QUIC(0),
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Run(context.Background()); err == nil {
		t.Fatal("Run on a taken port succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if addrs := srv.Addrs(ctx); addrs != nil || ctx.Err() != nil {
		t.Fatalf("Addrs of a server that failed to start: %v (context: %v), want nil at once", addrs, ctx.Err())
	}
}
