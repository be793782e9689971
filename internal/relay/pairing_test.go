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
	"github.com/p2pconnet/connet/internal/ingress"
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
		Ingresses: []Ingress{{Ingress: ingress.Ingress{Addr: "127.0.0.1:0"}}},
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

// bruteForcePaired is the pairing rule spelled out: some relayable source
// of src has the name of some relayable destination of dst.
func bruteForcePaired(src, dst []*pb.Endpoint) bool {
	for _, se := range src {
		if se.GetRole() != pb.Role_ROLE_SOURCE || se.GetRoute() == pb.Route_ROUTE_DIRECT {
			continue
		}
		for _, de := range dst {
			if de.GetName() == se.GetName() && de.GetRole() == pb.Role_ROLE_DESTINATION && de.GetRoute() != pb.Route_ROUTE_DIRECT {
				return true
			}
		}
	}
	return false
}

// TestPairingIndexAgreesWithRule compares the index with the rule on every
// combination of up to two endpoints per side over two names.
func TestPairingIndexAgreesWithRule(t *testing.T) {
	var all []*pb.Endpoint
	for _, name := range []string{"a", "b"} {
		for _, role := range []pb.Role{pb.Role_ROLE_UNSPECIFIED, pb.Role_ROLE_SOURCE, pb.Role_ROLE_DESTINATION} {
			for _, route := range []pb.Route{pb.Route_ROUTE_ANY, pb.Route_ROUTE_DIRECT, pb.Route_ROUTE_RELAY} {
				all = append(all, ep(name, role, route))
			}
		}
	}
	var sets [][]*pb.Endpoint
	sets = append(sets, nil)
	for i, a := range all {
		sets = append(sets, []*pb.Endpoint{a})
		for _, b := range all[i+1:] {
			sets = append(sets, []*pb.Endpoint{a, b})
		}
	}
	for _, s := range sets {
		for _, d := range sets {
			want := bruteForcePaired(s, d)
			if got, _ := indexEndpoints(s).pairsWith(indexEndpoints(d)); got != want {
				t.Fatalf("source grant %v, destination grant %v: paired %v, want %v", s, d, got, want)
			}
		}
	}
}

// TestPairingCostIsLinear counts the names a pairing check looks at: at
// most the relayable endpoints of the smaller side, never their product.
func TestPairingCostIsLinear(t *testing.T) {
	src := indexEndpoints(disjoint("s", 4096, pb.Role_ROLE_SOURCE))
	dst := indexEndpoints(disjoint("d", 4096, pb.Role_ROLE_DESTINATION))
	if ok, n := src.pairsWith(dst); ok || n > 4096 {
		t.Fatalf("4096 x 4096 disjoint endpoints: paired %v after %d lookups, want false after at most 4096", ok, n)
	}
	one := indexEndpoints(disjoint("d", 1, pb.Role_ROLE_SOURCE))
	if ok, n := one.pairsWith(dst); !ok || n != 1 {
		t.Fatalf("1 x 4096 endpoints: paired %v after %d lookups, want true after 1", ok, n)
	}
	if ok, n := src.pairsWith(indexEndpoints(nil)); ok || n != 0 {
		t.Fatalf("4096 x 0 endpoints: paired %v after %d lookups, want false after 0", ok, n)
	}
}

// TestGrantWakesOnlyItsWaiters has a stream from y to z wait for a pairing
// grant while unrelated clients present grants: the waiting stream is
// checked again only when z's fresh grant arrives.
func TestGrantWakesOnlyItsWaiters(t *testing.T) {
	s, signer := offlineRelay(t)
	y := offlineClient(t, s, signer, ep("web", pb.Role_ROLE_SOURCE, pb.Route_ROUTE_ANY))
	z := offlineClient(t, s, signer, ep("db", pb.Role_ROLE_DESTINATION, pb.Route_ROUTE_ANY))
	// Unrelated clients, one of them with a grant that would pair with y.
	var others []*client
	for range 5 {
		others = append(others, offlineClient(t, s, signer, ep("web", pb.Role_ROLE_DESTINATION, pb.Route_ROUTE_ANY)))
	}

	checks := make(chan error, 16)
	s.pairChecked = func(src, dst identity.ID, err error) {
		if src != y.id || dst != z.id {
			t.Errorf("pairing check of %s and %s", src, dst)
		}
		checks <- err
	}
	gone := make(chan struct{})
	defer close(gone)
	done := make(chan error, 1)
	go func() { done <- s.waitPaired(y, z, gone) }()
	if err := <-checks; err == nil {
		t.Fatal("y and z paired before z's grant allowed it")
	}

	// The waiter has taken its wake-up channels before this first check,
	// so any grant below that woke it would be followed by a check.
	_, yChanged := y.grants.Get()
	_, zChanged := z.grants.Get()
	for _, x := range others {
		regrant(t, s, signer, x, ep("web", pb.Role_ROLE_DESTINATION, pb.Route_ROUTE_RELAY))
	}
	for name, ch := range map[string]<-chan struct{}{"y": yChanged, "z": zChanged} {
		select {
		case <-ch:
			t.Fatalf("grants of other clients woke the waiters of %s", name)
		default:
		}
	}

	regrant(t, s, signer, z, ep("web", pb.Role_ROLE_DESTINATION, pb.Route_ROUTE_RELAY))
	if err := <-done; err != nil {
		t.Fatalf("z's pairing grant: %v", err)
	}
	close(checks)
	var rechecks []error
	for err := range checks {
		rechecks = append(rechecks, err)
	}
	if len(rechecks) != 1 || rechecks[0] != nil {
		t.Fatalf("checks after the first: %v, want one successful check after z's grant", rechecks)
	}
}
