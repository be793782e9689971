package control

import (
	"iter"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/grant"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/notify"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// client is one connected client as the registry knows it.
type client struct {
	id       identity.ID
	cert     []byte
	metadata string
	observed netip.AddrPort
	// overUDP tells that the client reached us over QUIC, so that observed
	// is its UDP mapping; over TCP it is no address to dial or probe.
	overUDP bool
	token   int
	// closeConn ends the client's connection; used when the same identity
	// connects again.
	closeConn func(reason string)

	// Guarded by the registry's mutex.
	locals    []netip.AddrPort
	endpoints []*pb.Endpoint
	// byKey is endpoints by name and role, so that a peer's endpoints
	// matching one of c's are found without scanning all of the peer's.
	byKey   map[endpointKey][]*pb.Endpoint
	refused []*pb.EndpointStatus
	relays  [][]byte
	punch   punchInfo

	// dirty is bumped whenever what the client should know changed.
	dirty notify.Value[uint64]
}

// registry indexes connected clients by identity and endpoint name, and
// knows the relays clients may use.
type registry struct {
	grants *grant.Signer

	mu      sync.Mutex
	clients map[identity.ID]*client
	byName  endpointIndex
	relays  map[identity.ID]*pb.Relay
}

func newRegistry(grants *grant.Signer) *registry {
	return &registry{
		grants:  grants,
		clients: map[identity.ID]*client{},
		byName:  endpointIndex{},
		relays:  map[identity.ID]*pb.Relay{},
	}
}

// addRelay offers a relay to every client, until the returned func
// withdraws it.
func (r *registry) addRelay(id identity.ID, relay *pb.Relay) (remove func()) {
	r.mu.Lock()
	r.relays[id] = relay
	r.touchAllLocked()
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.relays[id] == relay {
			delete(r.relays, id)
			r.touchAllLocked()
		}
	}
}

func (r *registry) touchAllLocked() {
	for _, c := range r.clients {
		c.dirty.Update(func(n uint64) uint64 { return n + 1 })
	}
}

// add registers c, replacing (and disconnecting) an earlier connection with
// the same identity.
func (r *registry) add(c *client) {
	r.mu.Lock()
	old := r.clients[c.id]
	if old != nil {
		r.setEndpointsLocked(old, nil)
	}
	r.clients[c.id] = c
	r.mu.Unlock()
	if old != nil {
		old.closeConn("replaced by a new connection of the same client")
	}
	c.dirty.Update(func(n uint64) uint64 { return n + 1 })
}

// remove unregisters c if it is still the registered connection.
func (r *registry) remove(c *client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clients[c.id] != c {
		return
	}
	r.setEndpointsLocked(c, nil)
	delete(r.clients, c.id)
}

// punchInfo is what a client sends for peers punching through its NAT:
// the secret that tags probes to it, and where relays saw its socket
// (each checked against the relay's signature; see nat.go).
type punchInfo struct {
	secret        []byte
	relayObserved []netip.AddrPort
}

// update records a client's new state and wakes every client it concerns.
func (r *registry) update(c *client, locals []netip.AddrPort, endpoints []*pb.Endpoint, refused []*pb.EndpointStatus, relays [][]byte, punch punchInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clients[c.id] != c {
		return
	}
	c.locals = locals
	c.refused = refused
	c.relays = relays
	c.punch = punch
	// Every peer sharing a name with c is woken, which covers changes of
	// c's addresses and relays as well as of its endpoints.
	r.setEndpointsLocked(c, endpoints)
	c.dirty.Update(func(n uint64) uint64 { return n + 1 })
}

// setEndpointsLocked replaces c's endpoints, re-indexes them and marks dirty
// every client sharing a name with the old or the new set.
func (r *registry) setEndpointsLocked(c *client, endpoints []*pb.Endpoint) {
	touched := map[string]bool{}
	for _, e := range c.endpoints {
		touched[e.GetName()] = true
		r.byName.remove(e, c)
	}
	c.endpoints = endpoints
	c.byKey = make(map[endpointKey][]*pb.Endpoint, len(endpoints))
	for _, e := range endpoints {
		touched[e.GetName()] = true
		r.byName.add(e, c)
		k := keyOf(e)
		c.byKey[k] = append(c.byKey[k], e)
	}
	r.markSharingDirtyLocked(c, touched)
}

// markSharingDirtyLocked wakes every client other than c that has an
// endpoint of one of the names.
func (r *registry) markSharingDirtyLocked(c *client, names map[string]bool) {
	for name := range names {
		for id, o := range r.byName.sharing(name) {
			if id != c.id {
				o.dirty.Update(func(n uint64) uint64 { return n + 1 })
			}
		}
	}
}

// moved records that c now reaches the server from observed (QUIC
// connection migration), and wakes c and its peers, whose candidates for
// c change with it.
func (r *registry) moved(c *client, observed netip.AddrPort) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clients[c.id] != c {
		return
	}
	c.observed = observed
	names := map[string]bool{}
	for _, e := range c.endpoints {
		names[e.GetName()] = true
	}
	r.markSharingDirtyLocked(c, names)
	c.dirty.Update(func(n uint64) uint64 { return n + 1 })
}

// stateFor computes what c should know now: every client that has an
// endpoint of the same name in the opposite role, once, with those
// endpoints.
func (r *registry) stateFor(c *client) *pb.ServerState {
	r.mu.Lock()
	peers, _ := r.peersLocked(c)
	st := &pb.ServerState{Peers: peers, Refused: c.refused, Observed: wire.FromAddrPort(c.observed), NatMapping: natLocked(c)}
	for _, id := range slices.SortedFunc(maps.Keys(r.relays), func(a, b identity.ID) int { return slices.Compare(a[:], b[:]) }) {
		st.Relays = append(st.Relays, r.relays[id])
	}
	endpoints := c.endpoints
	r.mu.Unlock()

	// Signing marshals every endpoint of c and is the costliest part of a
	// state; it needs nothing the lock guards (endpoint slices are replaced,
	// never modified), so other clients need not wait for it.
	if r.grants != nil && len(st.Relays) > 0 {
		sg, err := r.grants.Sign(c.id, endpoints, time.Now())
		if err == nil {
			st.Grant = sg
		}
	}
	return st
}

// peersLocked lists the clients with an endpoint of the same name as one of
// c's in the opposite role, with those endpoints, in a stable order. It
// also returns how many peer endpoints it examined, which tests use to
// check that the cost follows the matches, not all endpoints of all peers.
func (r *registry) peersLocked(c *client) (_ []*pb.Peer, examined int) {
	peers := map[identity.ID]*pb.Peer{}
	var order []identity.ID
	for _, e := range c.endpoints {
		want := endpointKey{name: e.GetName(), role: opposite(e.GetRole())}
		for id, o := range r.byName.clients(want) {
			if id == c.id {
				continue
			}
			for _, oe := range o.byKey[want] {
				examined++
				p := peers[id]
				if p == nil {
					p = r.peerLocked(o)
					peers[id] = p
					order = append(order, id)
				}
				p.Endpoints = append(p.Endpoints, &pb.PeerEndpoint{
					Name: oe.GetName(), Role: oe.GetRole(), Route: oe.GetRoute(), RelayEncryptions: oe.GetRelayEncryptions(),
				})
			}
		}
	}
	// A stable order keeps identical states identical on the wire.
	slices.SortFunc(order, func(a, b identity.ID) int { return slices.Compare(a[:], b[:]) })
	var out []*pb.Peer
	for _, id := range order {
		out = append(out, peers[id])
	}
	return out, examined
}

// peerLocked is what o's peers learn of it, but for the endpoints they
// share. A client over TCP has no observed address for them (see nat.go).
func (r *registry) peerLocked(o *client) *pb.Peer {
	p := &pb.Peer{Id: o.id[:], Certificate: o.cert, Metadata: o.metadata, Candidates: candidates(o), Relays: r.knownRelaysLocked(o),
		NatMapping: natLocked(o), PunchSecret: o.punch.secret}
	if o.overUDP {
		p.Observed = wire.FromAddrPort(o.observed)
	}
	return p
}

// endpointKey is an endpoint's name and role.
type endpointKey struct {
	name string
	role pb.Role
}

func keyOf(e *pb.Endpoint) endpointKey { return endpointKey{name: e.GetName(), role: e.GetRole()} }

// endpointIndex finds the clients announcing an endpoint of a given name,
// by role. Keying by role as well as name means a client looking for the
// destinations of a name never walks the (possibly many) sources of it.
type endpointIndex map[string]map[pb.Role]map[identity.ID]*client

func (ix endpointIndex) add(e *pb.Endpoint, c *client) {
	roles := ix[e.GetName()]
	if roles == nil {
		roles = map[pb.Role]map[identity.ID]*client{}
		ix[e.GetName()] = roles
	}
	clients := roles[e.GetRole()]
	if clients == nil {
		clients = map[identity.ID]*client{}
		roles[e.GetRole()] = clients
	}
	clients[c.id] = c
}

func (ix endpointIndex) remove(e *pb.Endpoint, c *client) {
	roles := ix[e.GetName()]
	delete(roles[e.GetRole()], c.id)
	if len(roles[e.GetRole()]) == 0 {
		delete(roles, e.GetRole())
	}
	if len(roles) == 0 {
		delete(ix, e.GetName())
	}
}

// clients are those with an endpoint of k's name and role.
func (ix endpointIndex) clients(k endpointKey) map[identity.ID]*client {
	return ix[k.name][k.role]
}

// sharing yields every client with an endpoint named name, in any role,
// once.
func (ix endpointIndex) sharing(name string) iter.Seq2[identity.ID, *client] {
	return func(yield func(identity.ID, *client) bool) {
		roles := ix[name]
		seen := make(map[identity.ID]bool)
		for _, clients := range roles {
			for id, o := range clients {
				if seen[id] {
					continue
				}
				seen[id] = true
				if !yield(id, o) {
					return
				}
			}
		}
	}
}

// relayCert is the certificate of the relay offered as id, nil if none is.
func (r *registry) relayCert(id identity.ID) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.relays[id].GetCertificate()
}

// knownRelaysLocked lists the relays o reports being at that this server
// knows; others cannot be used by o's peers.
func (r *registry) knownRelaysLocked(o *client) [][]byte {
	var out [][]byte
	for _, id := range o.relays {
		if rid, err := identity.ParseID(id); err == nil && r.relays[rid] != nil {
			out = append(out, id)
		}
	}
	return out
}

// candidates lists where peers can reach o: the address the server saw
// first (a NAT mapping works from anywhere), then o's own addresses. The
// address of a client over TCP is not its UDP mapping (maybe a proxy's):
// it is left out.
func candidates(o *client) []*pb.AddrPort {
	var out []*pb.AddrPort
	if o.overUDP {
		out = append(out, wire.FromAddrPort(o.observed))
	}
	for _, a := range o.locals {
		if !o.overUDP || a != o.observed {
			out = append(out, wire.FromAddrPort(a))
		}
	}
	return out
}

func opposite(r pb.Role) pb.Role {
	switch r {
	case pb.Role_ROLE_DESTINATION:
		return pb.Role_ROLE_SOURCE
	case pb.Role_ROLE_SOURCE:
		return pb.Role_ROLE_DESTINATION
	}
	return pb.Role_ROLE_UNSPECIFIED
}

// count is the number of connected clients.
func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.clients)
}

// snapshot is the registry as the status page shows it.
func (r *registry) snapshot() []ClientStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ClientStatus, 0, len(r.clients))
	for _, c := range r.clients {
		cs := ClientStatus{ID: c.id.String(), Metadata: c.metadata, Observed: c.observed.String()}
		for _, e := range c.endpoints {
			cs.Endpoints = append(cs.Endpoints, EndpointStatus{Name: e.GetName(), Role: wire.RoleName(e.GetRole()), Route: wire.RouteName(e.GetRoute())})
		}
		out = append(out, cs)
	}
	slices.SortFunc(out, func(a, b ClientStatus) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}
