package control

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/p2pconnet/connet/internal/grant"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// testRegistry is a registry with one relay, so that states carry grants.
func testRegistry(tb testing.TB) *registry {
	tb.Helper()
	signer, err := grant.LoadOrCreateSigner(filepath.Join(tb.TempDir(), "grant.key"))
	if err != nil {
		tb.Fatal(err)
	}
	r := newRegistry(signer)
	rid, err := identity.Generate("relay")
	if err != nil {
		tb.Fatal(err)
	}
	r.addRelay(rid.ID, &pb.Relay{Id: rid.ID[:], Hostports: []string{"127.0.0.1:1"}})
	return r
}

// addClient registers a client announcing eps.
func addClient(tb testing.TB, r *registry, eps ...*pb.Endpoint) *client {
	tb.Helper()
	id, err := identity.Generate("client")
	if err != nil {
		tb.Fatal(err)
	}
	c := &client{id: id.ID, closeConn: func(string) {}}
	r.add(c)
	r.update(c, nil, eps, nil, nil)
	return c
}

// named returns n endpoints of role, named n0, n1...
func named(n int, role pb.Role) []*pb.Endpoint {
	eps := make([]*pb.Endpoint, n)
	for i := range eps {
		eps[i] = &pb.Endpoint{Name: fmt.Sprintf("n%d", i), Role: role}
	}
	return eps
}

// hostileRegistry holds a client of 4096 sources and 8 clients sharing all
// its names but in the same role, each with one destination it pairs with:
// few matches among many shared names.
func hostileRegistry(tb testing.TB) (*registry, *client) {
	r := testRegistry(tb)
	c := addClient(tb, r, named(4096, pb.Role_ROLE_SOURCE)...)
	for range 8 {
		addClient(tb, r, append(named(4096, pb.Role_ROLE_SOURCE), &pb.Endpoint{Name: "n0", Role: pb.Role_ROLE_DESTINATION})...)
	}
	return r, c
}

func BenchmarkStateFor(b *testing.B) {
	r, c := hostileRegistry(b)
	for b.Loop() {
		if st := r.stateFor(c); len(st.GetPeers()) != 8 || st.GetGrant() == nil {
			b.Fatalf("state has %d peers, grant %v", len(st.GetPeers()), st.GetGrant() != nil)
		}
	}
}
