package control

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/grant"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/network"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
)

// Ingress is one address the server accepts clients (or relays) at,
// with the certificate it presents there.
type Ingress struct {
	ingress.Ingress
	Cert tls.Certificate
}

// Config configures a Server.
type Config struct {
	Ingresses []Ingress
	Tokens    []Token
	// Grants signs what clients may do at relays; nil without relays.
	Grants *grant.Signer
	// RelayIngresses accept relays that run apart, authenticated by
	// RelayTokens.
	RelayIngresses    []Ingress
	RelayTokens       []Token
	QUIC              *quic.Config
	StatelessResetKey *quic.StatelessResetKey
	Logger            *slog.Logger
	// Network opens the ingresses' sockets; nil means the operating
	// system's.
	Network network.Network
	// Metrics counts refusals; nil counts nothing.
	Metrics *metrics.Control

	// maxState is the most a state sent to a client may weigh: what
	// clients read states with. Tests lower it.
	maxState int
}

// Stream limits of the control and relay-control ingresses. Each of their
// connections carries one stream (the hello, then states); the shared
// QUIC settings allow the many streams relays and peers carry, which here
// would only let a stranger open streams that nobody reads, each holding
// receive buffers.
const (
	// maxControlStreams is the one stream the protocol uses and one of
	// slack, so a client opening its stream while quic-go still counts a
	// closed one is not stalled.
	maxControlStreams = 2
	// noUniStreams refuses unidirectional streams (quic-go's negative
	// value), which the protocol never uses.
	noUniStreams = -1
)

// Server is a control server.
type Server struct {
	cfg      Config
	registry *registry

	mu         sync.Mutex
	addrs      []net.Addr
	relayAddrs []net.Addr
	tcpAddrs   []net.Addr
	ready      chan struct{}
	stopped    chan struct{} // closed when Run returns
	// relays are the relays offered to clients, as the status page shows
	// them.
	relays map[*RelayStatus]struct{}
}

// New validates cfg and returns a server ready to Run.
func New(cfg Config) (*Server, error) {
	if len(cfg.Ingresses) == 0 {
		return nil, errors.New("control: no ingress")
	}
	if len(cfg.Tokens) == 0 {
		return nil, errors.New("control: no client tokens")
	}
	if cfg.maxState == 0 {
		cfg.maxState = wire.MaxControlMessage
	}
	return &Server{cfg: cfg, registry: newRegistry(cfg.Grants), ready: make(chan struct{}), stopped: make(chan struct{}), relays: map[*RelayStatus]struct{}{}}, nil
}

// Addrs returns the bound addresses of the ingresses once Run has bound
// them all (useful with port 0), or nil if ctx ends or Run returns first.
func (s *Server) Addrs(ctx context.Context) []net.Addr {
	return s.whenReady(ctx, func() []net.Addr { return s.addrs })
}

// TCPAddrs returns the bound TCP addresses of the ingresses (client and
// relay ones) once Run has bound them all, or nil if ctx ends or Run
// returns first.
func (s *Server) TCPAddrs(ctx context.Context) []net.Addr {
	return s.whenReady(ctx, func() []net.Addr { return s.tcpAddrs })
}

// RelayAddrs returns the bound addresses of the relay ingresses once Run
// has bound them, or nil if ctx ends or Run returns first.
func (s *Server) RelayAddrs(ctx context.Context) []net.Addr {
	return s.whenReady(ctx, func() []net.Addr { return s.relayAddrs })
}

// whenReady waits until Run has bound every ingress and returns what get
// reads under the lock; nil if ctx ends first, or if Run returned without
// binding them all (a caller waiting on a server that failed to start must
// not wait forever).
func (s *Server) whenReady(ctx context.Context, get func() []net.Addr) []net.Addr {
	select {
	case <-s.ready:
	case <-s.stopped:
		select {
		case <-s.ready:
		default:
			return nil
		}
	case <-ctx.Done():
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return get()
}

// Run serves every ingress until ctx ends or one fails.
func (s *Server) Run(ctx context.Context) error {
	defer close(s.stopped)
	var ls []ingress.Listener
	for _, set := range []struct {
		ingresses []Ingress
		alpn      string
		serve     func(context.Context, muxconn.Conn, Ingress)
		addrs     *[]net.Addr
		peer      string
	}{
		{s.cfg.Ingresses, wire.ALPNControl, s.serve, &s.addrs, "client"},
		{s.cfg.RelayIngresses, wire.ALPNRelayControl, s.serveRelay, &s.relayAddrs, "relay"},
	} {
		for _, in := range set.ingresses {
			ls = append(ls, ingress.Listener{
				Ingress:    in.Ingress,
				Config:     s.ingressConfig(in, set.alpn, set.peer),
				MaxStreams: maxControlStreams,
				Handle:     func(ctx context.Context, conn muxconn.Conn) { set.serve(ctx, conn, in) },
				Bound:      func(a net.Addr, tcp bool) { s.bound(set.addrs, a, tcp) },
				Log:        []any{"for", set.alpn},
			})
		}
	}
	g := ingress.Group{Listeners: ls, Name: "control server", Logger: s.cfg.Logger}
	return g.Run(ctx, func() { close(s.ready) })
}

// bound records an address an ingress bound: a TCP one among tcpAddrs,
// a QUIC one among addrs (the client or the relay ones).
func (s *Server) bound(addrs *[]net.Addr, a net.Addr, tcp bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tcp {
		addrs = &s.tcpAddrs
	}
	*addrs = append(*addrs, a)
}

// addrPolicy says whether a connection may come from an address: every
// check that is set must allow it (the ingress's CIDRs, the token's).
func addrPolicy(checks ...func(netip.Addr) bool) func(netip.Addr) error {
	return func(a netip.Addr) error {
		for _, ok := range checks {
			if ok != nil && !ok(a) {
				return fmt.Errorf("%w: address %s not allowed", errAuth, a)
			}
		}
		return nil
	}
}

// ingressConfig is the configuration of an ingress for peer ("client" or
// "relay", as its refusals are counted) speaking alpn.
func (s *Server) ingressConfig(in Ingress, alpn, peer string) ingress.Config {
	qconf := s.cfg.QUIC.Clone()
	qconf.MaxIncomingStreams = maxControlStreams
	qconf.MaxIncomingUniStreams = noUniStreams
	return ingress.Config{
		TLS: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{in.Cert},
			NextProtos:   []string{alpn},
			// A client's (or relay's) certificate is its identity, pinned
			// by its peers; the server only needs proof that it holds the
			// key.
			ClientAuth: tls.RequireAnyClientCert,
		},
		QUIC:              qconf,
		StatelessResetKey: s.cfg.StatelessResetKey,
		Refused:           func() { s.cfg.Metrics.Refused(peer, metrics.ReasonAddress) },
		Limited:           func() { s.cfg.Metrics.Refused(peer, metrics.ReasonConnections) },
		Logger:            s.cfg.Logger,
		Network:           s.cfg.Network,
	}
}

// Status is what the status page shows of a control server.
type Status struct {
	Clients []ClientStatus `json:"clients"`
	// Relays are the relays offered to clients now: a relay that left, or
	// went silent (see liveness), is no longer listed.
	Relays []RelayStatus `json:"relays"`
}

// RelayStatus is one relay offered to clients.
type RelayStatus struct {
	ID        string   `json:"id"`
	Hostports []string `json:"hostports"`
	// InProcess is set for a relay running in the server's process;
	// the others joined over the network, from Remote.
	InProcess bool      `json:"in_process,omitempty"`
	Remote    string    `json:"remote,omitempty"`
	Metadata  string    `json:"metadata,omitempty"`
	Version   string    `json:"version,omitempty"`
	Since     time.Time `json:"since"`
}

// ClientStatus is one connected client.
type ClientStatus struct {
	ID        string           `json:"id"`
	Metadata  string           `json:"metadata,omitempty"`
	Observed  string           `json:"observed"`
	Endpoints []EndpointStatus `json:"endpoints"`
}

// EndpointStatus is one endpoint of a client.
type EndpointStatus struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	Route string `json:"route"`
}

// AddRelay offers a relay to clients until remove is called. Relays that
// run in the same process register here directly; others through the
// relay ingress (see ServeRelays).
func (s *Server) AddRelay(id identity.ID, cert []byte, hostports []string) (remove func()) {
	return s.offerRelay(id, cert, RelayStatus{Hostports: hostports, InProcess: true})
}

// offerRelay offers a relay to clients, and shows it on the status page,
// until remove is called.
func (s *Server) offerRelay(id identity.ID, cert []byte, st RelayStatus) (remove func()) {
	st.ID, st.Since = id.String(), time.Now()
	entry := &st
	s.mu.Lock()
	s.relays[entry] = struct{}{}
	s.mu.Unlock()
	withdraw := s.registry.addRelay(id, &pb.Relay{Id: id[:], Certificate: cert, Hostports: st.Hostports})
	return func() {
		withdraw()
		s.mu.Lock()
		delete(s.relays, entry)
		s.mu.Unlock()
	}
}

// Status returns the server's current state.
func (s *Server) Status() Status {
	st := Status{Clients: s.registry.snapshot(), Relays: []RelayStatus{}}
	s.mu.Lock()
	for r := range s.relays {
		st.Relays = append(st.Relays, *r)
	}
	s.mu.Unlock()
	slices.SortFunc(st.Relays, func(a, b RelayStatus) int { return strings.Compare(a.ID, b.ID) })
	return st
}

// Counts returns how many clients are connected and relays offered, for
// the metrics.
func (s *Server) Counts() (clients, relays int) {
	clients = s.registry.count()
	s.mu.Lock()
	defer s.mu.Unlock()
	return clients, len(s.relays)
}
