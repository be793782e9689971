package relay

import (
	"github.com/p2pconnet/connet/internal/grant"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// endpointIndex holds the names of a grant's endpoints that may be relayed,
// by role. It is built once when a grant arrives, so that checking whether
// two clients pair costs one lookup per name of the smaller side instead of
// a comparison of every endpoint of one grant with every endpoint of the
// other (16 million comparisons for two grants of 4096 endpoints, repeated
// for every waiting stream at every new grant).
type endpointIndex struct {
	sources      map[string]struct{}
	destinations map[string]struct{}
}

// indexEndpoints indexes the endpoints that allow relayed routes.
func indexEndpoints(eps []*pb.Endpoint) endpointIndex {
	ix := endpointIndex{sources: map[string]struct{}{}, destinations: map[string]struct{}{}}
	for _, e := range eps {
		if e.GetRoute() == pb.Route_ROUTE_DIRECT {
			continue
		}
		switch e.GetRole() {
		case pb.Role_ROLE_SOURCE:
			ix.sources[e.GetName()] = struct{}{}
		case pb.Role_ROLE_DESTINATION:
			ix.destinations[e.GetName()] = struct{}{}
		}
	}
	return ix
}

// pairsWith reports whether a relayable source of ix has the name of a
// relayable destination of dst. It also returns how many names it looked
// up, which tests use to check that the cost is linear.
func (ix endpointIndex) pairsWith(dst endpointIndex) (paired bool, lookups int) {
	// Walk the smaller set and look names up in the larger one.
	small, large := ix.sources, dst.destinations
	if len(small) > len(large) {
		small, large = large, small
	}
	for name := range small {
		lookups++
		if _, ok := large[name]; ok {
			return true, lookups
		}
	}
	return false, lookups
}

// heldGrant is a client's current grant with its index.
type heldGrant struct {
	*grant.Grant
	relayable endpointIndex
}

func newHeldGrant(g *grant.Grant) *heldGrant {
	return &heldGrant{Grant: g, relayable: indexEndpoints(g.Endpoints)}
}
