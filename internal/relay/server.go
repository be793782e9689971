package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/network"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/quic-go/quic-go"
)

// Ingress is one address the relay accepts clients at.
type Ingress struct {
	// Addr is the UDP address for QUIC.
	Addr string
	// NoQUIC leaves QUIC out: the ingress listens on TCP only.
	NoQUIC bool
	// TCP and WSS add a listener on TCP, for clients whose UDP is
	// blocked: TLS with a stream multiplexer, and the same inside a
	// WebSocket over HTTPS (one port: the TLS handshake tells them
	// apart). It listens at TCPAddr; an empty TCPAddr means Addr's host
	// at the port the UDP socket bound (the same port number, as clients
	// expect).
	TCP, WSS bool
	TCPAddr  string
	// AllowAddr, if set, must accept a client's address before its
	// handshake starts.
	AllowAddr func(netip.Addr) bool
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
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	defer wg.Wait()
	// serve runs one listener's accept loop until ctx ends; a failure
	// ends the relay.
	serve := func(ln ingress.Acceptor, closeLn func(), in Ingress) {
		wg.Go(func() {
			defer closeLn()
			if err := ingress.Serve(ctx, ln, func(ctx context.Context, conn muxconn.Conn) { s.serve(ctx, conn, in) }); err != nil {
				cancel(fmt.Errorf("relay: %w", err))
			}
		})
	}
	for _, in := range s.cfg.Ingresses {
		p, err := ingress.ListenPair(ingress.PairConfig{
			Config: s.ingressConfig(in), QUIC: !in.NoQUIC, TCP: in.TCP, WSS: in.WSS,
			TCPAddr: in.TCPAddr, MaxStreams: maxIncoming(in.Quotas),
		})
		if err != nil {
			cancel(err)
			return err
		}
		if p.QUIC != nil {
			tr := p.Transport
			s.mu.Lock()
			s.addrs = append(s.addrs, tr.Conn.LocalAddr())
			s.mu.Unlock()
			s.cfg.Logger.Info("relay listening", "addr", logs.Addr(tr.Conn.LocalAddr()), "id", s.cfg.Identity.ID)
			serve(ingress.QUICAcceptor(p.QUIC), func() { _ = ingress.Close(tr) }, in)
		}
		if ln := p.TCP; ln != nil {
			s.mu.Lock()
			s.tcpAddrs = append(s.tcpAddrs, ln.Addr())
			s.mu.Unlock()
			s.cfg.Logger.Info("relay listening", "addr", logs.Addr(ln.Addr()), "transport", ingress.TCPTransports(in.TCP, in.WSS), "id", s.cfg.Identity.ID)
			serve(ln, func() { _ = ln.Close() }, in)
		}
	}
	close(s.ready)
	<-ctx.Done()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func (s *Server) ingressConfig(in Ingress) ingress.Config {
	return ingress.Config{
		Addr: in.Addr,
		TLS: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{s.cfg.Identity.Cert},
			NextProtos:   []string{wire.ALPNRelay},
			// Clients prove their identity; their grant says what it may do.
			ClientAuth: tls.RequireAnyClientCert,
		},
		QUIC:              clientQUIC(s.cfg.QUIC, in.Quotas),
		StatelessResetKey: s.cfg.StatelessResetKey,
		AllowAddr:         in.AllowAddr,
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
