package control

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/p2pconnet/connet/internal/grant"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
)

// Ingress is one address the server accepts clients at.
type Ingress struct {
	Addr string
	Cert tls.Certificate
	// AllowAddr, if set, must accept a client's address before its
	// handshake starts.
	AllowAddr func(netip.Addr) bool
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
	// PacketListener, if set, opens the ingresses' UDP sockets (see
	// ingress.Config); nil means real ones.
	PacketListener ingress.PacketListener

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
	ready      chan struct{}
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
	return &Server{cfg: cfg, registry: newRegistry(cfg.Grants), ready: make(chan struct{})}, nil
}

// Addrs returns the bound addresses of the ingresses once Run has bound
// them all (useful with port 0), or nil if ctx ends first.
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

// RelayAddrs returns the bound addresses of the relay ingresses once Run
// has bound them, or nil if ctx ends first.
func (s *Server) RelayAddrs(ctx context.Context) []net.Addr {
	select {
	case <-s.ready:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.relayAddrs
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

	type listener struct {
		ingresses []Ingress
		alpn      string
		serve     func(context.Context, *quic.Conn, Ingress)
		addrs     *[]net.Addr
	}
	for _, l := range []listener{
		{s.cfg.Ingresses, wire.ALPNControl, s.serve, &s.addrs},
		{s.cfg.RelayIngresses, wire.ALPNRelayControl, s.serveRelay, &s.relayAddrs},
	} {
		for _, in := range l.ingresses {
			ln, tr, err := s.listen(in, l.alpn)
			if err != nil {
				cancel(err)
				return err
			}
			s.mu.Lock()
			*l.addrs = append(*l.addrs, tr.Conn.LocalAddr())
			s.mu.Unlock()
			s.cfg.Logger.Info("control server listening", "addr", logs.Addr(tr.Conn.LocalAddr()), "for", l.alpn)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { _ = ingress.Close(tr) }()
				cancel(ingress.Serve(ctx, ln, func(ctx context.Context, conn *quic.Conn) { l.serve(ctx, conn, in) }))
			}()
		}
	}
	close(s.ready)
	<-ctx.Done()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
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

func (s *Server) listen(in Ingress, alpn string) (*quic.Listener, *quic.Transport, error) {
	qconf := s.cfg.QUIC.Clone()
	qconf.MaxIncomingStreams = maxControlStreams
	qconf.MaxIncomingUniStreams = noUniStreams
	return ingress.Listen(ingress.Config{
		Addr: in.Addr,
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
		AllowAddr:         in.AllowAddr,
		Logger:            s.cfg.Logger,
		PacketListener:    s.cfg.PacketListener,
	})
}

// Status is what the status page shows of a control server.
type Status struct {
	Clients []ClientStatus `json:"clients"`
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
	return s.registry.addRelay(id, &pb.Relay{Id: id[:], Certificate: cert, Hostports: hostports})
}

// Status returns the server's current state.
func (s *Server) Status() Status { return Status{Clients: s.registry.snapshot()} }
