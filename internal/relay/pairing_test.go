package relay

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/grant"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// offlineRelay is a relay Server that is never run: enough to check grants
// and pair clients without any network.
func offlineRelay(tb testing.TB) (*Server, *grant.Signer) {
	tb.Helper()
	signer, err := grant.LoadOrCreateSigner(filepath.Join(tb.TempDir(), "grant.key"))
	if err != nil {
		tb.Fatal(err)
	}
	id, err := identity.Generate("relay")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(Config{
		Ingresses: []Ingress{{Addr: "127.0.0.1:0"}},
		Identity:  id,
		QUIC:      tuning.QUIC(0),
		Logger:    slog.New(slog.DiscardHandler),
		GrantKey:  func() ed25519.PublicKey { return signer.PublicKey() },
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s, signer
}

// offlineClient is an admitted client without a connection, holding a
// grant for eps.
func offlineClient(tb testing.TB, s *Server, signer *grant.Signer, eps ...*pb.Endpoint) *client {
	tb.Helper()
	id, err := identity.Generate("client")
	if err != nil {
		tb.Fatal(err)
	}
	c := &client{id: id.ID}
	regrant(tb, s, signer, c, eps...)
	return c
}

// regrant has c present a fresh grant for eps.
func regrant(tb testing.TB, s *Server, signer *grant.Signer, c *client, eps ...*pb.Endpoint) {
	tb.Helper()
	sg, err := signer.Sign(c.id, eps, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.checkGrant(c, sg); err != nil {
		tb.Fatal(err)
	}
}

// disjoint returns n relayable endpoints of role, named prefix0...
func disjoint(prefix string, n int, role pb.Role) []*pb.Endpoint {
	eps := make([]*pb.Endpoint, n)
	for i := range eps {
		eps[i] = ep(fmt.Sprintf("%s%d", prefix, i), role, pb.Route_ROUTE_ANY)
	}
	return eps
}

// BenchmarkPairing4096 checks two clients of 4096 endpoints each that do
// not pair: the worst case of the pairing check.
func BenchmarkPairing4096(b *testing.B) {
	s, signer := offlineRelay(b)
	src := offlineClient(b, s, signer, disjoint("s", 4096, pb.Role_ROLE_SOURCE)...)
	dst := offlineClient(b, s, signer, disjoint("d", 4096, pb.Role_ROLE_DESTINATION)...)
	now := time.Now()
	for b.Loop() {
		if err := paired(src, dst, now); err == nil {
			b.Fatal("disjoint grants paired")
		}
	}
}
