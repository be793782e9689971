// Package endpoints is the table of this client's endpoints: its
// destinations and sources by name and role, what the control server
// refused of them, the relay-encryption policy they set, and the
// bookkeeping of the connections each carries. The root package's
// Destination and Source are its public face.
package endpoints

import (
	"cmp"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

var (
	// ErrClosed reports use of a closed table or endpoint.
	ErrClosed = errors.New("closed")
	// ErrExists reports a second endpoint of a name and role.
	ErrExists = errors.New("endpoint already exists")
	// ErrNoDestination reports that a source has no destination it can
	// reach (the root package documents it).
	ErrNoDestination = errors.New("no reachable destination")
)

// Config is what the table needs from its client.
type Config struct {
	Logger   *slog.Logger
	Metrics  *metrics.Client
	Registry *peer.Registry
	Identity *identity.Identity
	// LocalAddr is the client's socket, the local end of every tunnelled
	// connection.
	LocalAddr net.Addr
	// Announce is given the endpoints to announce to the control server
	// whenever they change.
	Announce func([]*pb.Endpoint)
	// HandshakeTimeout bounds a source's wait for a path to a peer that
	// is still being reached.
	HandshakeTimeout time.Duration
	// RelaysOffered tells whether the control server offers relays (a
	// relayed path may still come up).
	RelaysOffered func() bool
	// Control tells whether the control server is reached, and if not,
	// the last error; a source with no peer says so.
	Control func() (connected bool, lastErr string)
	// MaxPending is how many streams one peer may have waiting for an
	// answer here (see Admit).
	MaxPending int
}

// Table is the table of the client's endpoints.
type Table struct {
	cfg Config
	// wg holds the goroutines serving peers' streams (see ServePath).
	wg sync.WaitGroup

	mu         sync.Mutex
	closed     bool
	local      map[peer.EndpointKey]*Endpoint
	refused    map[peer.EndpointKey]error
	mismatches map[mismatchKey]bool
}

// New returns an empty table.
func New(cfg Config) *Table {
	return &Table{
		cfg:        cfg,
		local:      map[peer.EndpointKey]*Endpoint{},
		refused:    map[peer.EndpointKey]error{},
		mismatches: map[mismatchKey]bool{},
	}
}

// Add registers an endpoint and announces it; it fails with ErrClosed
// once the table is closed and with ErrExists for a name and role taken.
func (t *Table) Add(key peer.EndpointKey, opts Options) (*Endpoint, error) {
	e := t.newEndpoint(key, opts)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	if t.local[key] != nil {
		return nil, ErrExists
	}
	t.local[key] = e
	t.announceLocked()
	return e, nil
}

// remove unregisters e if it is still the registered endpoint of its key.
func (t *Table) remove(e *Endpoint) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.local[e.Key] == e {
		delete(t.local, e.Key)
	}
	t.announceLocked()
}

// Local is this client's endpoint of name and role, nil if none.
func (t *Table) Local(name string, role peer.Role) *Endpoint {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.local[peer.EndpointKey{Name: name, Role: role}]
}

// matching is this client's endpoint that pairs with a peer's endpoint:
// the destination of a source, the source of a destination.
func (t *Table) matching(pe peer.Endpoint) *Endpoint {
	if pe.Role != peer.Source && pe.Role != peer.Destination {
		return nil
	}
	return t.Local(pe.Name, pe.Role.Opposite())
}

// Role lists the endpoints of role, by name.
func (t *Table) Role(role peer.Role) []*Endpoint {
	t.mu.Lock()
	var out []*Endpoint
	for _, e := range t.local {
		if e.Key.Role == role {
			out = append(out, e)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b *Endpoint) int { return cmp.Compare(a.Key.Name, b.Key.Name) })
	return out
}

// Close closes every endpoint and refuses new ones.
func (t *Table) Close() {
	t.mu.Lock()
	t.closed = true
	all := make([]*Endpoint, 0, len(t.local))
	for _, e := range t.local {
		all = append(all, e)
	}
	t.mu.Unlock()
	for _, e := range all {
		e.Close()
	}
}

// Wait waits for the goroutines serving peers' streams, which end with
// their paths.
func (t *Table) Wait() { t.wg.Wait() }

// Refusal is the control server's refusal of the endpoint key, if any.
func (t *Table) Refusal(key peer.EndpointKey) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.refused[key]
}

// Apply takes what the control server last said: the peers it names and
// the endpoints it refused. A new refusal is logged, once.
func (t *Table) Apply(peers []peer.Info, refused map[peer.EndpointKey]error) {
	t.warnMismatches(peers)
	t.mu.Lock()
	old := t.refused
	t.refused = refused
	t.mu.Unlock()
	for key, err := range refused {
		if old[key] == nil {
			t.cfg.Logger.Error("endpoint refused", "name", key.Name, "role", key.Role, "err", err)
		}
	}
}

// AllowDirect tells whether some endpoint shared with the peer lets both
// sides go direct.
func (t *Table) AllowDirect(st peer.State) bool {
	for _, pe := range st.Info.Endpoints {
		local := t.matching(pe)
		if local != nil && local.Route.AllowsDirect() && pe.Route.AllowsDirect() {
			return true
		}
	}
	return false
}

// announceLocked tells the control server the endpoints, sorted by name
// and role.
func (t *Table) announceLocked() {
	var eps []*pb.Endpoint
	for _, e := range t.local {
		eps = append(eps, e.announcement())
	}
	slices.SortFunc(eps, func(a, b *pb.Endpoint) int {
		return cmp.Or(cmp.Compare(a.GetName(), b.GetName()), cmp.Compare(a.GetRole(), b.GetRole()))
	})
	t.cfg.Announce(eps)
}

func (e *Endpoint) announcement() *pb.Endpoint {
	role := pb.Role_ROLE_DESTINATION
	if e.Key.Role == peer.Source {
		role = pb.Role_ROLE_SOURCE
	}
	names := make([]string, len(e.Encryptions))
	for i, enc := range e.Encryptions {
		names[i] = string(enc)
	}
	return &pb.Endpoint{Name: e.Key.Name, Role: role, Route: wire.RouteFromName(string(e.Route)), RelayEncryptions: names}
}
