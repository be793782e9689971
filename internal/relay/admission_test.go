package relay

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/grant"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/observation"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
)

// testRelay runs a relay with no control server at all: a grant key is
// all it needs.
type testRelay struct {
	t      testing.TB
	id     *identity.Identity
	signer *grant.Signer
	addr   net.Addr
	srv    *Server
}

func startRelay(t *testing.T) *testRelay {
	t.Helper()
	return startRelayAt(t, Ingress{Ingress: ingress.Ingress{Addr: "127.0.0.1:0"}})
}

// startRelayWithQuotas runs a relay whose one ingress has the given quotas.
func startRelayWithQuotas(t *testing.T, q Quotas) *testRelay {
	t.Helper()
	return startRelayAt(t, Ingress{Ingress: ingress.Ingress{Addr: "127.0.0.1:0"}, Quotas: q})
}

// startRelayAt runs a relay with the one ingress in until the test ends.
func startRelayAt(t testing.TB, in Ingress) *testRelay {
	t.Helper()
	return startRelayQUIC(t, in, tuning.QUIC(0))
}

// startRelayQUIC is startRelayAt with the QUIC configuration qconf (its
// handshake timeout is also how long a client has to present its grant).
func startRelayQUIC(t testing.TB, in Ingress, qconf *quic.Config) *testRelay {
	t.Helper()
	signer, err := grant.LoadOrCreateSigner(filepath.Join(t.TempDir(), "grant.key"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.Generate("relay")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{
		Ingresses: []Ingress{in},
		Identity:  id,
		QUIC:      qconf,
		Logger:    slog.New(slog.DiscardHandler),
		GrantKey:  func() ed25519.PublicKey { return signer.PublicKey() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &testRelay{t: t, id: id, signer: signer, addr: s.Addrs(ctx)[0], srv: s}
}

// rawClient is a raw QUIC client of the relay.
type rawClient struct {
	id   *identity.Identity
	conn *quic.Conn
	auth *quic.Stream
	// observed is where the relay said it sees us, signed, in its reply
	// to the first grant.
	observed *pb.SignedObservation
}

func (r *testRelay) dial(id *identity.Identity) *rawClient {
	r.t.Helper()
	return r.dialWith(id, tuning.QUIC(0))
}

// dialWith is dial with the QUIC configuration qconf.
func (r *testRelay) dialWith(id *identity.Identity, qconf *quic.Config) *rawClient {
	r.t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		r.t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	r.t.Cleanup(func() { _ = tr.Close(); _ = udp.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := tr.Dial(ctx, r.addr, id.PinnedClientConfig(r.id.DER(), wire.ALPNRelay), qconf)
	if err != nil {
		r.t.Fatal(err)
	}
	return &rawClient{id: id, conn: conn}
}

func (r *testRelay) grantFor(id *identity.Identity, now time.Time, eps ...*pb.Endpoint) *pb.SignedGrant {
	r.t.Helper()
	sg, err := r.signer.Sign(id.ID, eps, now)
	if err != nil {
		r.t.Fatal(err)
	}
	return sg
}

// present sends a grant on a new auth stream and returns the relay's
// verdict.
func (c *rawClient) present(t *testing.T, sg *pb.SignedGrant) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wire.Write(s, sg); err != nil {
		return err
	}
	var reply pb.RelayReply
	if err := wire.Read(s, &reply, wire.MaxStreamHeader); err != nil {
		return err
	}
	c.auth = s
	c.observed = reply.GetSignedObserved()
	return wire.FromPB(reply.GetError())
}

// connect asks the relay for a stream to peer.
func (c *rawClient) connect(t *testing.T, peer identity.ID) (*quic.Stream, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wire.Write(s, &pb.RelayConnect{Peer: peer[:]}); err != nil {
		return nil, err
	}
	var reply pb.RelayReply
	if err := wire.Read(s, &reply, wire.MaxStreamHeader); err != nil {
		return nil, err
	}
	if err := wire.FromPB(reply.GetError()); err != nil {
		return nil, err
	}
	_ = s.SetDeadline(time.Time{})
	return s, nil
}

func ep(name string, role pb.Role, route pb.Route) *pb.Endpoint {
	return &pb.Endpoint{Name: name, Role: role, Route: route}
}

func newIdentity(t testing.TB) *identity.Identity {
	t.Helper()
	id, err := identity.Generate("client")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func code(err error) pb.ErrorCode {
	var e *wire.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return -1
}

// TestRelayPairsOnGrantsAlone relays bytes between a source and a
// destination admitted on their grants, with no control server anywhere.
func TestRelayPairsOnGrantsAlone(t *testing.T) {
	r := startRelay(t)
	now := time.Now()
	src, dst := r.dial(newIdentity(t)), r.dial(newIdentity(t))
	if err := src.present(t, r.grantFor(src.id, now, ep("web", pb.Role_ROLE_SOURCE, pb.Route_ROUTE_ANY))); err != nil {
		t.Fatal(err)
	}
	if err := dst.present(t, r.grantFor(dst.id, now, ep("web", pb.Role_ROLE_DESTINATION, pb.Route_ROUTE_RELAY))); err != nil {
		t.Fatal(err)
	}
	// The admission tells each client where the relay sees it, signed for
	// the control server, which compares it with its own view to classify
	// the client's NAT.
	for _, c := range []*rawClient{src, dst} {
		if got, err := observation.Verify(r.id.DER(), c.observed, c.id.ID); err != nil || got.String() != c.conn.LocalAddr().String() {
			t.Fatalf("relay observed %v (%v), want %v", got, err, c.conn.LocalAddr())
		}
	}
	out, err := src.connect(t, dst.id.ID)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := dst.conn.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var hello pb.RelayIncoming
	if err := wire.Read(in, &hello, wire.MaxStreamHeader); err != nil {
		t.Fatal(err)
	}
	if from, _ := identity.ParseID(hello.GetPeer()); from != src.id.ID {
		t.Fatalf("destination told the stream is from %s, want %s", from, src.id.ID)
	}
	if _, err := out.Write([]byte("through the relay")); err != nil {
		t.Fatal(err)
	}
	_ = out.Close()
	got, err := io.ReadAll(in)
	if err != nil || string(got) != "through the relay" {
		t.Fatalf("destination read %q, %v", got, err)
	}
}

func TestRelayRefusesBadGrants(t *testing.T) {
	r := startRelay(t)
	now := time.Now()
	web := ep("web", pb.Role_ROLE_SOURCE, pb.Route_ROUTE_ANY)
	other := newIdentity(t)
	foreign, err := grant.LoadOrCreateSigner(filepath.Join(t.TempDir(), "foreign.key"))
	if err != nil {
		t.Fatal(err)
	}
	for name, make := range map[string]func(c *rawClient) *pb.SignedGrant{
		"stolen": func(*rawClient) *pb.SignedGrant { return r.grantFor(other, now, web) },
		"expired": func(c *rawClient) *pb.SignedGrant {
			return r.grantFor(c.id, now.Add(-2*grant.Lifetime), web)
		},
		"foreign key": func(c *rawClient) *pb.SignedGrant {
			sg, _ := foreign.Sign(c.id.ID, []*pb.Endpoint{web}, now)
			return sg
		},
		"garbage": func(*rawClient) *pb.SignedGrant {
			return &pb.SignedGrant{Grant: []byte("not a grant"), Signature: make([]byte, 64)}
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := r.dial(newIdentity(t))
			err := c.present(t, make(c))
			if code(err) != pb.ErrorCode_ERROR_CODE_NOT_AUTHORIZED {
				t.Fatalf("%s grant: %v, want a NOT_AUTHORIZED refusal", name, err)
			}
			select {
			case <-c.conn.Context().Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the relay kept the connection of a refused client")
			}
		})
	}
}

func TestRelayRefusesUnpairedConnects(t *testing.T) {
	r := startRelay(t)
	now := time.Now()
	for name, tc := range map[string]struct {
		src, dst *pb.Endpoint
		want     pb.ErrorCode
	}{
		"other name":         {ep("web", pb.Role_ROLE_SOURCE, 0), ep("db", pb.Role_ROLE_DESTINATION, 0), pb.ErrorCode_ERROR_CODE_NOT_AUTHORIZED},
		"both sources":       {ep("web", pb.Role_ROLE_SOURCE, 0), ep("web", pb.Role_ROLE_SOURCE, 0), pb.ErrorCode_ERROR_CODE_NOT_AUTHORIZED},
		"source direct":      {ep("web", pb.Role_ROLE_SOURCE, pb.Route_ROUTE_DIRECT), ep("web", pb.Role_ROLE_DESTINATION, 0), pb.ErrorCode_ERROR_CODE_NOT_AUTHORIZED},
		"destination direct": {ep("web", pb.Role_ROLE_SOURCE, 0), ep("web", pb.Role_ROLE_DESTINATION, pb.Route_ROUTE_DIRECT), pb.ErrorCode_ERROR_CODE_NOT_AUTHORIZED},
	} {
		t.Run(name, func(t *testing.T) {
			src, dst := r.dial(newIdentity(t)), r.dial(newIdentity(t))
			if err := src.present(t, r.grantFor(src.id, now, tc.src)); err != nil {
				t.Fatal(err)
			}
			if err := dst.present(t, r.grantFor(dst.id, now, tc.dst)); err != nil {
				t.Fatal(err)
			}
			if _, err := src.connect(t, dst.id.ID); code(err) != tc.want {
				t.Fatalf("connect: %v, want code %v", err, tc.want)
			}
		})
	}
	t.Run("absent peer", func(t *testing.T) {
		src := r.dial(newIdentity(t))
		if err := src.present(t, r.grantFor(src.id, now, ep("web", pb.Role_ROLE_SOURCE, 0))); err != nil {
			t.Fatal(err)
		}
		if _, err := src.connect(t, newIdentity(t).ID); code(err) != pb.ErrorCode_ERROR_CODE_DESTINATION_NOT_FOUND {
			t.Fatalf("connect to a client not at the relay: %v", err)
		}
	})
	t.Run("updated grant drops the endpoint", func(t *testing.T) {
		src, dst := r.dial(newIdentity(t)), r.dial(newIdentity(t))
		if err := src.present(t, r.grantFor(src.id, now, ep("web", pb.Role_ROLE_SOURCE, 0))); err != nil {
			t.Fatal(err)
		}
		if err := dst.present(t, r.grantFor(dst.id, now, ep("web", pb.Role_ROLE_DESTINATION, 0))); err != nil {
			t.Fatal(err)
		}
		// The destination sends a fresh grant without "web" on its first
		// stream; once the relay has it, the pair no longer connects.
		if err := wire.Write(dst.auth, r.grantFor(dst.id, now, ep("db", pb.Role_ROLE_DESTINATION, 0))); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			s, err := src.connect(t, dst.id.ID)
			if code(err) == pb.ErrorCode_ERROR_CODE_NOT_AUTHORIZED {
				return
			}
			if s != nil {
				s.CancelRead(0)
				s.CancelWrite(0)
			}
			if time.Now().After(deadline) {
				t.Fatalf("the updated grant was not applied: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
