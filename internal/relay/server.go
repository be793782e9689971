package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/network"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/quic-go/quic-go"
)

// Ingress is one address the relay accepts clients at, with the quotas
// of the clients admitted there.
type Ingress struct {
	ingress.Ingress
	// Quotas bound what each client admitted here may hold; zero values
	// mean the defaults.
	Quotas Quotas
}

// Config configures a relay Server.
type Config struct {
	Ingresses         []Ingress
	Identity          *identity.Identity
	StatelessResetKey *quic.StatelessResetKey
	QUIC              *quic.Config
	Logger            *slog.Logger
	// Network opens the ingresses' sockets; nil means the operating
	// system's.
	Network network.Network
	// GrantKey returns the control server's grant key, nil while unknown
	// (clients are refused until it is known).
	GrantKey func() ed25519.PublicKey
	// Tap, if set, is shown every chunk of bytes the relay forwards, in
	// either direction: what a relay operator could read. Tests use it to
	// check that encrypted relaying leaves nothing readable; it is nil in
	// production.
	Tap func([]byte)
	// Metrics counts relayed connections and refusals; nil counts nothing.
	Metrics *metrics.Relay
}

// Server is a relay server.
type Server struct {
	cfg Config

	mu      sync.Mutex
	clients map[identity.ID]*client
	addrs   []net.Addr
	// tcpAddrs are the bound TCP ingress addresses.
	tcpAddrs []net.Addr
	ready    chan struct{}

	// pairChecked, if set, is told the outcome of every pairing check of a
	// waiting stream; tests use it to see which grants wake which streams.
	pairChecked func(src, dst identity.ID, err error)
}

// New returns a relay ready to Run.
func New(cfg Config) (*Server, error) {
	if len(cfg.Ingresses) == 0 {
		return nil, errors.New("relay: no ingress")
	}
	if cfg.Identity == nil || cfg.GrantKey == nil {
		return nil, errors.New("relay: identity and grant key are required")
	}
	return &Server{cfg: cfg, clients: map[identity.ID]*client{}, ready: make(chan struct{})}, nil
}

// Addrs returns the bound ingress addresses once Run has bound them, or nil
// if ctx ends first.
func (s *Server) Addrs(ctx context.Context) []net.Addr {
	select {
	case <-s.ready:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.addrs
	case <-ctx.Done():
		return nil
	}
}

// TCPAddrs returns the bound TCP ingress addresses once Run has bound
// them, or nil if ctx ends first.
func (s *Server) TCPAddrs(ctx context.Context) []net.Addr {
	select {
	case <-s.ready:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.tcpAddrs
	case <-ctx.Done():
		return nil
	}
}

// Run serves every ingress until ctx ends or one fails.
func (s *Server) Run(ctx context.Context) error {
	ls := make([]ingress.Listener, len(s.cfg.Ingresses))
	for i, in := range s.cfg.Ingresses {
		ls[i] = ingress.Listener{
			Ingress:    in.Ingress,
			Config:     s.ingressConfig(in),
			MaxStreams: maxIncoming(in.Quotas),
			Handle:     func(ctx context.Context, conn muxconn.Conn) { s.serve(ctx, conn, in) },
			Bound:      s.bound,
			Log:        []any{"id", s.cfg.Identity.ID},
		}
	}
	g := ingress.Group{Listeners: ls, Name: "relay", Logger: s.cfg.Logger}
	return g.Run(ctx, func() { close(s.ready) })
}

// bound records an address an ingress bound.
func (s *Server) bound(a net.Addr, tcp bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tcp {
		s.tcpAddrs = append(s.tcpAddrs, a)
	} else {
		s.addrs = append(s.addrs, a)
	}
}

func (s *Server) ingressConfig(in Ingress) ingress.Config {
	return ingress.Config{
		TLS: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{s.cfg.Identity.Cert},
			NextProtos:   []string{wire.ALPNRelay},
			// Clients prove their identity; their grant says what it may do.
			ClientAuth: tls.RequireAnyClientCert,
		},
		QUIC:              clientQUIC(s.cfg.QUIC, in.Quotas),
		StatelessResetKey: s.cfg.StatelessResetKey,
		Refused:           func() { s.cfg.Metrics.Refused(metrics.ReasonAddress) },
		Limited:           func() { s.cfg.Metrics.Refused(metrics.ReasonConnections) },
		Logger:            s.cfg.Logger,
		Network:           s.cfg.Network,
	}
}

// Identity is the relay's identity, as clients pin it.
func (s *Server) Identity() *identity.Identity { return s.cfg.Identity }

// Status is what the status page shows of a relay.
type Status struct {
	ID      string         `json:"id"`
	Clients []ClientStatus `json:"clients"`
}

// ClientStatus is one client connected to the relay.
type ClientStatus struct {
	ID      string `json:"id"`
	Remote  string `json:"remote"`
	Streams int64  `json:"active_streams"`
}

// Clients is the number of clients connected now.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

// Status returns the relay's current state.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{ID: s.cfg.Identity.ID.String(), Clients: []ClientStatus{}}
	for id, c := range s.clients {
		st.Clients = append(st.Clients, ClientStatus{ID: id.String(), Remote: c.conn.RemoteAddr().String(), Streams: c.streams.Load()})
	}
	return st
}
