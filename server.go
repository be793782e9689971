package connet

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/p2pconnet/connet/internal/control"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/network"
	"github.com/p2pconnet/connet/internal/relay"
	"github.com/p2pconnet/connet/internal/restrict"
	"github.com/p2pconnet/connet/internal/runner"
	"github.com/p2pconnet/connet/internal/status"
	"github.com/p2pconnet/connet/internal/store"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/prometheus/client_golang/prometheus"
)

// IPRestriction holds allow and deny lists of CIDR prefixes; an address is
// refused if a deny prefix contains it, or if there are allow prefixes and
// none contains it. The zero value accepts everything.
type IPRestriction = restrict.IP

// ParseIPRestriction parses allow and deny lists in CIDR notation.
func ParseIPRestriction(allow, deny []string) (IPRestriction, error) {
	return restrict.ParseIP(allow, deny)
}

// Ingress is an address at which the server accepts clients.
type Ingress struct {
	// Addr is the UDP address to listen at; default ":19190".
	Addr string
	// Cert is the server's TLS certificate for this address.
	Cert tls.Certificate
	// Restriction is checked before a client's handshake starts.
	Restriction IPRestriction
	// Besides QUIC, the ingress listens on TCP for TLS 1.3 with a stream
	// multiplexer and for the same inside a WebSocket over HTTPS (one
	// port: the TLS handshake tells them apart), which clients fall back
	// to when UDP is blocked. TCPAddr is where; empty means Addr's host at
	// the port the UDP socket bound. NoTCP and NoWSS leave those out,
	// NoQUIC leaves QUIC out (something must remain).
	TCPAddr string
	NoTCP   bool
	NoWSS   bool
	NoQUIC  bool
}

// RelayIngress is an address at which a relay accepts clients.
type RelayIngress struct {
	// Addr is the UDP address to listen at; default ":19191".
	Addr string
	// Hostports are what clients are told to dial; default
	// "localhost:<port of Addr>".
	Hostports []string
	// Restriction is checked before a client's handshake starts.
	Restriction IPRestriction
	// MaxClientStreams is how many relayed connections one client may
	// hold at once, MaxPendingStreams how many of its new ones may wait to
	// be paired; beyond them a connection is refused with ErrorLimit. 0
	// means the defaults (4096 and 1024).
	MaxClientStreams  int
	MaxPendingStreams int
	// Besides QUIC, the ingress listens on TCP for TLS 1.3 with a stream
	// multiplexer and for the same inside a WebSocket over HTTPS (one
	// port: the TLS handshake tells them apart), which clients fall back
	// to when UDP is blocked. TCPAddr is where; empty means Addr's host at
	// the port the UDP socket bound. NoTCP and NoWSS leave those out,
	// NoQUIC leaves QUIC out (something must remain).
	TCPAddr string
	NoTCP   bool
	NoWSS   bool
	NoQUIC  bool
}

// TokenRestriction limits what the clients of one token may do: IP (an
// IPRestriction) checks their address; NameMatches, if set, must match
// every endpoint name; Role, if set, is the only role allowed
// ("destination" or "source").
type TokenRestriction = control.TokenRestriction

// ServerOption configures NewServer.
type ServerOption func(*serverConfig) error

type serverConfig struct {
	ingresses        []Ingress
	tokens           []string
	restrictions     []TokenRestriction
	relayIngresses   []RelayIngress
	relayControl     []Ingress
	relayTokens      []string
	relayRestricts   []IPRestriction
	storeDir         string
	statusAddr       string
	handshakeTimeout time.Duration
	buildVersion     string
	network          Network
	logger           *slog.Logger
}

// ServerIngress adds an address at which clients are accepted.
func ServerIngress(in Ingress) ServerOption {
	return func(c *serverConfig) error {
		if in.Addr == "" {
			in.Addr = ":19190"
		}
		if len(in.Cert.Certificate) == 0 {
			return fmt.Errorf("ingress %s: no certificate", in.Addr)
		}
		if in.NoQUIC && in.NoTCP && in.NoWSS {
			return fmt.Errorf("ingress %s: no transport", in.Addr)
		}
		c.ingresses = append(c.ingresses, in)
		return nil
	}
}

// ServerClientTokens adds tokens that clients may authenticate with.
func ServerClientTokens(tokens ...string) ServerOption {
	return func(c *serverConfig) error { c.tokens = append(c.tokens, tokens...); return nil }
}

// ServerClientTokenRestrictions sets one restriction per token, in the
// order the tokens were given.
func ServerClientTokenRestrictions(rs ...TokenRestriction) ServerOption {
	return func(c *serverConfig) error { c.restrictions = rs; return nil }
}

// ServerRelayIngress runs a relay in the server's process, accepting
// clients at in.
func ServerRelayIngress(in RelayIngress) ServerOption {
	return func(c *serverConfig) error {
		if in.Addr == "" {
			in.Addr = ":19191"
		}
		if in.MaxClientStreams < 0 || in.MaxPendingStreams < 0 {
			return fmt.Errorf("relay ingress %q: negative stream quota", in.Addr)
		}
		if in.NoQUIC && in.NoTCP && in.NoWSS {
			return fmt.Errorf("relay ingress %q: no transport", in.Addr)
		}
		if len(in.Hostports) == 0 {
			_, port, err := net.SplitHostPort(in.Addr)
			if err != nil {
				return fmt.Errorf("relay ingress %q: %w", in.Addr, err)
			}
			in.Hostports = []string{net.JoinHostPort("localhost", port)}
		}
		c.relayIngresses = append(c.relayIngresses, in)
		return nil
	}
}

// ServerRelayControlIngress accepts relays that run apart (see NewRelay)
// at in; they authenticate with the tokens of ServerRelayTokens.
func ServerRelayControlIngress(in Ingress) ServerOption {
	return func(c *serverConfig) error {
		if in.Addr == "" {
			in.Addr = ":19189"
		}
		if len(in.Cert.Certificate) == 0 {
			return fmt.Errorf("relay control ingress %s: no certificate", in.Addr)
		}
		c.relayControl = append(c.relayControl, in)
		return nil
	}
}

// ServerRelayTokens sets the tokens relays authenticate with, and
// optionally one address restriction per token.
func ServerRelayTokens(tokens []string, restrictions []IPRestriction) ServerOption {
	return func(c *serverConfig) error {
		if len(restrictions) > 0 && len(restrictions) != len(tokens) {
			return fmt.Errorf("%d relay token restrictions for %d tokens", len(restrictions), len(tokens))
		}
		c.relayTokens, c.relayRestricts = tokens, restrictions
		return nil
	}
}

// ServerStoreDir sets where the server keeps state across restarts; by
// default a new temporary directory, so nothing survives a restart.
func ServerStoreDir(dir string) ServerOption {
	return func(c *serverConfig) error { c.storeDir = dir; return nil }
}

// ServerStatusAddress serves the server's status as JSON over HTTP.
func ServerStatusAddress(addr string) ServerOption {
	return func(c *serverConfig) error { c.statusAddr = addr; return nil }
}

// ServerBuildVersion sets the version shown on the status page and in the
// metrics.
func ServerBuildVersion(v string) ServerOption {
	return func(c *serverConfig) error { c.buildVersion = v; return nil }
}

// ServerHandshakeIdleTimeout sets how long a QUIC handshake may take.
func ServerHandshakeIdleTimeout(d time.Duration) ServerOption {
	return func(c *serverConfig) error { c.handshakeTimeout = d; return nil }
}

// ServerNetwork sets the network the server's ingresses (clients',
// relays' and the in-process relay's) listen on, UDP and TCP, each at its
// addresses. By default the operating system's, whose UDP sockets give
// quic-go batched reads, GSO and ECN; tests hand in a simulated network.
func ServerNetwork(n Network) ServerOption {
	return func(c *serverConfig) error {
		if n == nil {
			return errors.New("nil network")
		}
		c.network = n
		return nil
	}
}

// ServerLogger sets the logger; by default nothing is logged.
func ServerLogger(l *slog.Logger) ServerOption {
	return func(c *serverConfig) error { c.logger = l; return nil }
}

// Server runs a control server, and the relays given by
// ServerRelayIngress.
type Server struct {
	cfg     *serverConfig
	control *control.Server
	relay   *relay.Server
	status  net.Listener
	// tempStore is a store dir made for this run only, removed after it.
	tempStore string
	started   time.Time
	metrics   *prometheus.Registry
}

// NewServer validates the options and prepares a server; Run starts it.
func NewServer(opts ...ServerOption) (_ *Server, err error) {
	cfg, err := newServerConfig(opts)
	if err != nil {
		return nil, err
	}
	tempStore, err := store.TempIfEmpty(&cfg.storeDir, "connet-server-", cfg.logger)
	if err != nil {
		return nil, err
	}
	// Run removes the temporary store; nothing will if we fail here.
	defer store.RemoveTempOnError(tempStore, &err)
	s := &Server{cfg: cfg, tempStore: tempStore, started: time.Now(), metrics: metrics.NewRegistry(cfg.buildVersion)}
	if s.control, err = s.newControl(); err != nil {
		return nil, err
	}
	if len(cfg.relayIngresses) > 0 {
		// The gauge reads the relay at scrape time, once it is built.
		m := metrics.NewRelay(s.metrics, func() int { return s.relay.Clients() })
		if s.relay, err = newRelayServer(cfg.storeDir, cfg.relayIngresses, cfg.handshakeTimeout, s.control.GrantKey, cfg.network, m, cfg.logger); err != nil {
			return nil, err
		}
	}
	if s.status, err = listenStatus(cfg.statusAddr); err != nil {
		return nil, err
	}
	return s, nil
}

func newServerConfig(opts []ServerOption) (*serverConfig, error) {
	cfg := &serverConfig{network: network.OS{}, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(cfg); err != nil {
			return nil, err
		}
	}
	switch {
	case len(cfg.ingresses) == 0:
		return nil, errors.New("server needs at least one ingress")
	case len(cfg.tokens) == 0:
		return nil, errors.New("server needs at least one client token")
	case len(cfg.restrictions) > 0 && len(cfg.restrictions) != len(cfg.tokens):
		return nil, fmt.Errorf("%d token restrictions for %d tokens", len(cfg.restrictions), len(cfg.tokens))
	}
	return cfg, nil
}

// newControl makes the control server, its keys kept in the store.
func (s *Server) newControl() (*control.Server, error) {
	cfg := s.cfg
	// The gauges read the server at scrape time, once it is built.
	m := metrics.NewControl(s.metrics,
		func() int { clients, _ := s.control.Counts(); return clients },
		func() int { _, relays := s.control.Counts(); return relays })
	relayControl := make([]control.Ingress, len(cfg.relayControl))
	for i, in := range cfg.relayControl {
		// Relays join over QUIC only (a relay without UDP could not
		// serve QUIC clients anyway).
		relayControl[i] = control.Ingress{Ingress: ingress.Ingress{Addr: in.Addr, AllowAddr: in.internal().AllowAddr}, Cert: in.Cert}
	}
	return control.Open(cfg.storeDir, control.Config{
		Ingresses:      controlIngresses(cfg.ingresses),
		Tokens:         control.Tokens(cfg.tokens, cfg.restrictions),
		RelayIngresses: relayControl,
		RelayTokens:    control.RelayTokens(cfg.relayTokens, cfg.relayRestricts),
		QUIC:           tuning.QUIC(cfg.handshakeTimeout),
		Logger:         cfg.logger,
		Network:        cfg.network,
		Metrics:        m,
	})
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if s.tempStore != "" {
		defer func() { _ = os.RemoveAll(s.tempStore) }()
	}
	parts := []func(context.Context) error{s.control.Run, s.serveStatus}
	if s.relay != nil {
		parts = append(parts, s.relay.Run, s.offerRelay)
	}
	return runner.Run(ctx, parts...)
}

// offerRelay offers the in-process relay to clients while it runs.
func (s *Server) offerRelay(ctx context.Context) error {
	bound := s.relay.Addrs(ctx)
	if bound == nil {
		return nil
	}
	id := s.relay.Identity()
	remove := s.control.AddRelay(id.ID, id.DER(), relayHostports(s.cfg.relayIngresses, bound))
	<-ctx.Done()
	remove()
	return nil
}

func (s *Server) serveStatus(ctx context.Context) error {
	return serveStatus(ctx, s.status, func() any { return s.Status() }, s.metrics, s.cfg.logger)
}

// internal is the ingress as the servers take it.
func (in Ingress) internal() ingress.Ingress {
	out := ingress.Ingress{Addr: in.Addr, NoQUIC: in.NoQUIC, TCP: !in.NoTCP, WSS: !in.NoWSS, TCPAddr: in.TCPAddr}
	if !in.Restriction.Empty() {
		out.AllowAddr = in.Restriction.Allowed
	}
	return out
}

// internal is the relay ingress as the servers take it.
func (in RelayIngress) internal() relay.Ingress {
	i := Ingress{Addr: in.Addr, Restriction: in.Restriction, TCPAddr: in.TCPAddr, NoTCP: in.NoTCP, NoWSS: in.NoWSS, NoQUIC: in.NoQUIC}
	return relay.Ingress{Ingress: i.internal(), Quotas: relay.Quotas{Streams: in.MaxClientStreams, Pending: in.MaxPendingStreams}}
}

func controlIngresses(ins []Ingress) []control.Ingress {
	out := make([]control.Ingress, len(ins))
	for i, in := range ins {
		out[i] = control.Ingress{Ingress: in.internal(), Cert: in.Cert}
	}
	return out
}

// relayHostports lists what clients dial (see relay.Hostports).
func relayHostports(ins []RelayIngress, bound []net.Addr) []string {
	hps := make([][]string, len(ins))
	for i, in := range ins {
		hps[i] = in.Hostports
	}
	return relay.Hostports(hps, bound)
}

// newRelayServer makes a relay that keeps its identity and stateless reset
// key in storeDir.
func newRelayServer(storeDir string, ins []RelayIngress, handshake time.Duration, grantKey func() ed25519.PublicKey, nw Network, m *metrics.Relay, log *slog.Logger) (*relay.Server, error) {
	ingresses := make([]relay.Ingress, len(ins))
	for i, in := range ins {
		ingresses[i] = in.internal()
	}
	return relay.Open(storeDir, relay.Config{
		Ingresses: ingresses,
		QUIC:      tuning.QUIC(handshake),
		Logger:    log,
		GrantKey:  grantKey,
		Network:   nw,
		Metrics:   m,
	})
}

// Addrs returns the addresses the ingresses are bound to, once they are
// (useful with port 0), or nil if ctx ends first.
func (s *Server) Addrs(ctx context.Context) []net.Addr { return s.control.Addrs(ctx) }

// RelayControlAddrs returns the addresses at which relays that run apart
// join, once they are bound, or nil if ctx ends first.
func (s *Server) RelayControlAddrs(ctx context.Context) []net.Addr {
	return s.control.RelayAddrs(ctx)
}

// RelayAddrs returns the addresses the in-process relays are bound to,
// once they are, or nil if ctx ends first or there are none.
func (s *Server) RelayAddrs(ctx context.Context) []net.Addr {
	if s.relay == nil {
		return nil
	}
	return s.relay.Addrs(ctx)
}

// StatusAddr is the address the status page and metrics are served at,
// nil without ServerStatusAddress.
func (s *Server) StatusAddr() net.Addr { return statusAddr(s.status) }

// listenStatus listens for the status page at addr; nil without one.
func listenStatus(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	return status.Listen(addr)
}

// serveStatus serves the status page and the metrics on ln until ctx
// ends; without a listener there is nothing to serve.
func serveStatus(ctx context.Context, ln net.Listener, snapshot func() any, reg *prometheus.Registry, log *slog.Logger) error {
	if ln == nil {
		return nil
	}
	return status.Serve(ctx, ln, snapshot, metrics.Handler(reg), log)
}

// statusAddr is the address of a status listener, nil if there is none.
func statusAddr(ln net.Listener) net.Addr {
	if ln == nil {
		return nil
	}
	return ln.Addr()
}

// ServerStatus is a snapshot of a server, as its status page shows it.
type ServerStatus struct {
	ProcessStatus
	Control control.Status `json:"control"`
	// Relay is the relay in the server's process, if any.
	Relay *relay.Status `json:"relay,omitempty"`
}

// Status returns a snapshot of the server.
func (s *Server) Status() ServerStatus {
	st := ServerStatus{
		ProcessStatus: ProcessStatus{Kind: "control", Version: s.cfg.buildVersion, Started: s.started},
		Control:       s.control.Status(),
	}
	if s.relay != nil {
		st.Kind = "server"
		rs := s.relay.Status()
		st.Relay = &rs
	}
	return st
}
