// Package peer keeps a client's view of the other clients it shares
// endpoints with: what the control server says about each (certificate,
// candidate addresses, endpoints) and the live paths to it. It decides
// nothing about how paths are made: the direct and relay layers add and end
// paths, and sources pick among them.
package peer

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/notify"
	"github.com/p2pconnet/connet/internal/quota"
)

// Role is what an endpoint is on a client.
type Role string

const (
	Destination Role = "destination"
	Source      Role = "source"
)

// Opposite is the role of the matching endpoint on the other side.
func (r Role) Opposite() Role {
	if r == Destination {
		return Source
	}
	return Destination
}

// Endpoint is one endpoint a peer has: its name, the peer's role for it and
// the routes the peer accepts for it.
type Endpoint struct {
	Name  string
	Role  Role
	Route netpath.Route
	// RelayEncryptions are the encryptions the peer accepts over relays.
	RelayEncryptions []string
}

// Info is what the control server says about a peer.
type Info struct {
	ID         identity.ID
	Cert       []byte
	Metadata   string
	Candidates []netip.AddrPort
	Endpoints  []Endpoint
	// Relays are the relays the peer is connected to.
	Relays []identity.ID
	// Observed is where the control server sees the peer's packets come
	// from: its NAT's public address.
	Observed netip.AddrPort
	// NAT is how the peer's NAT maps, as the peer announced it.
	NAT NAT
	// PunchSecret tags the probes sent to the peer when punching through
	// a symmetric NAT (see package direct).
	PunchSecret []byte
}

// NAT is how a client's NAT maps the client's socket to external
// addresses (RFC 4787).
type NAT string

const (
	// NATUnknown: the client cannot tell (it has no second server to
	// compare the control server's observation with).
	NATUnknown NAT = ""
	// NATIndependent: one external address whatever the destination, or
	// no NAT at all. Peers can reach it at the address servers observe.
	NATIndependent NAT = "independent"
	// NATPerDestination: a new external port per destination, a
	// "symmetric" NAT. Peers cannot know the port it will use for them.
	NATPerDestination NAT = "per-destination"
)

// State is a peer's current state.
type State struct {
	Info Info
	// Announced is false once the control server stopped listing the peer.
	// Its live paths stay usable for a while (the peer may only have lost
	// its control connection), but no new paths are made to it.
	Announced bool
	Paths     []netpath.Path
}

// Endpoint returns the peer's endpoint of the given name and role.
func (s State) Endpoint(name string, role Role) (Endpoint, bool) {
	for _, e := range s.Info.Endpoints {
		if e.Name == name && e.Role == role {
			return e, true
		}
	}
	return Endpoint{}, false
}

// HasDirect tells whether a direct path is usable.
func (s State) HasDirect() bool {
	return slices.ContainsFunc(s.Paths, func(p netpath.Path) bool { return p.Kind().Direct() && netpath.Usable(p) })
}

// UsablePaths returns the paths that may take new streams and that every
// route allows, best first. Sources, the load balancer and the status page
// all see a peer's paths through it.
func (s State) UsablePaths(routes ...netpath.Route) []netpath.Path {
	var out []netpath.Path
	for _, pp := range s.Paths {
		if netpath.Usable(pp) && !slices.ContainsFunc(routes, func(r netpath.Route) bool { return !r.Allows(pp.Kind()) }) {
			out = append(out, pp)
		}
	}
	netpath.Sort(out)
	return out
}

// Peer is one other client.
type Peer struct {
	ID    identity.ID
	state notify.Value[State]
	// gone is closed when the registry forgets the peer; goroutines working
	// for the peer end then.
	gone chan struct{}
	// mu orders AddPath's goroutine start against forget, so that no
	// watcher joins wg after the registry's Close began waiting on it.
	mu sync.Mutex
	// wg is the registry's: it owns the path watchers AddPath starts.
	wg *sync.WaitGroup
	// changed is the registry's signal, bumped after every state change.
	changed *notify.Value[uint64]

	// Pending counts the streams the peer opened to this client that wait
	// for an answer, on all its paths, direct and relayed; beyond the
	// client's quota they are refused (see package quota).
	Pending quota.Pending
}

// update changes the state and signals the registry.
func (p *Peer) update(fn func(State) State) {
	p.state.Update(fn)
	p.changed.Update(func(n uint64) uint64 { return n + 1 })
}

// State returns the peer's current state and a channel closed at its next
// change.
func (p *Peer) State() (State, <-chan struct{}) { return p.state.Get() }

// Gone is closed when the peer has been forgotten.
func (p *Peer) Gone() <-chan struct{} { return p.gone }

// AddPath makes pp available for new streams until it is done.
func (p *Peer) AddPath(pp netpath.Path) {
	if !p.watch(pp) {
		_ = pp.Close()
	}
}

// watch adds pp and starts its watcher, unless the peer is gone. The
// watcher ends when the path does or, at the latest, when the peer is
// forgotten, so the registry's Close can wait for it.
func (p *Peer) watch(pp netpath.Path) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gone:
		return false
	default:
	}
	p.update(func(s State) State {
		s.Paths = append(slices.Clone(s.Paths), pp)
		return s
	})
	p.wg.Go(func() {
		select {
		case <-pp.Done():
		case <-p.gone:
			_ = pp.Close()
		}
		p.update(func(s State) State {
			s.Paths = slices.DeleteFunc(slices.Clone(s.Paths), func(x netpath.Path) bool { return x == pp })
			return s
		})
	})
	return true
}

// forget closes gone once; the registry calls it with r.mu held.
func (p *Peer) forget() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gone:
	default:
		close(p.gone)
	}
}
