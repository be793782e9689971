package control

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/p2pconnet/connet/internal/grant"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"google.golang.org/protobuf/proto"
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
	r.update(c, nil, eps, nil, nil, punchInfo{})
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

// bruteForcePeers is what stateFor lists as peers, spelled out over every
// endpoint of every client.
func bruteForcePeers(r *registry, c *client) []*pb.Peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*pb.Peer
	ids := slices.SortedFunc(func(yield func(identity.ID) bool) {
		for id := range r.clients {
			if !yield(id) {
				return
			}
		}
	}, func(a, b identity.ID) int { return slices.Compare(a[:], b[:]) })
	for _, id := range ids {
		o := r.clients[id]
		if id == c.id {
			continue
		}
		var p *pb.Peer
		for _, e := range c.endpoints {
			for _, oe := range o.endpoints {
				if oe.GetName() != e.GetName() || oe.GetRole() != opposite(e.GetRole()) {
					continue
				}
				if p == nil {
					p = r.peerLocked(o)
					out = append(out, p)
				}
				p.Endpoints = append(p.Endpoints, &pb.PeerEndpoint{
					Name: oe.GetName(), Role: oe.GetRole(), Route: oe.GetRoute(), RelayEncryptions: oe.GetRelayEncryptions(),
				})
			}
		}
	}
	return out
}

// randomEndpoints draws up to 4 endpoints over few names and every role,
// duplicates included, so that clients share names often.
func randomEndpoints(rng *rand.Rand) []*pb.Endpoint {
	var eps []*pb.Endpoint
	for range rng.IntN(5) {
		eps = append(eps, &pb.Endpoint{
			Name:  []string{"a", "b", "c"}[rng.IntN(3)],
			Role:  pb.Role(rng.IntN(3)),
			Route: pb.Route(rng.IntN(3)),
		})
	}
	return eps
}

// TestStateForMatchesRule checks the peers stateFor lists against the rule
// over every endpoint of every client, while clients come, change their
// endpoints and go.
func TestStateForMatchesRule(t *testing.T) {
	r := testRegistry(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var clients []*client
	for range 12 {
		clients = append(clients, addClient(t, r, randomEndpoints(rng)...))
	}
	check := func(round int) {
		t.Helper()
		for i, c := range clients {
			want := bruteForcePeers(r, c)
			got := r.stateFor(c).GetPeers()
			if len(got) != len(want) {
				t.Fatalf("round %d, client %d: %d peers, want %d", round, i, len(got), len(want))
			}
			for j := range got {
				if !proto.Equal(got[j], want[j]) {
					t.Fatalf("round %d, client %d, peer %d:\n got %v\nwant %v", round, i, j, got[j], want[j])
				}
			}
		}
	}
	for round := range 50 {
		check(round)
		c := clients[rng.IntN(len(clients))]
		r.update(c, nil, randomEndpoints(rng), nil, nil, punchInfo{})
	}
	for _, c := range clients {
		r.remove(c)
	}
	if len(r.byName) != 0 {
		t.Fatalf("the index keeps %d names after every client left", len(r.byName))
	}
}

// TestStateForCostFollowsMatches counts the peer endpoints stateFor
// examines for a client sharing 4096 names with 8 clients that announce
// them in the same role and pair with it on one name only: it examines
// those 8 matches, not every endpoint of every client sharing a name.
func TestStateForCostFollowsMatches(t *testing.T) {
	r, c := hostileRegistry(t)
	r.mu.Lock()
	peers, examined := r.peersLocked(c)
	r.mu.Unlock()
	if len(peers) != 8 || examined != 8 {
		t.Fatalf("%d peers after examining %d endpoints, want 8 after 8", len(peers), examined)
	}
}
