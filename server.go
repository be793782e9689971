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
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/control"
	"github.com/p2pconnet/connet/internal/grant"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/network"
	"github.com/p2pconnet/connet/internal/relay"
	"github.com/p2pconnet/connet/internal/restrict"
	"github.com/p2pconnet/connet/internal/status"
	"github.com/p2pconnet/connet/internal/store"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"
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
	// means the defaults (4096 and 64).
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

// TokenRestriction limits what the clients of one token may do.
type TokenRestriction struct {
	IP IPRestriction
	// NameMatches, if set, must match every endpoint name.
	NameMatches *regexp.Regexp
	// Role, if set, is the only role allowed: "destination" or "source".
	Role string
}

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
	cfg := &serverConfig{network: network.OS{}, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(cfg); err != nil {
			return nil, err
		}
	}
	if len(cfg.ingresses) == 0 {
		return nil, errors.New("server needs at least one ingress")
	}
	if len(cfg.tokens) == 0 {
		return nil, errors.New("server needs at least one client token")
	}
	if len(cfg.restrictions) > 0 && len(cfg.restrictions) != len(cfg.tokens) {
		return nil, fmt.Errorf("%d token restrictions for %d tokens", len(cfg.restrictions), len(cfg.tokens))
	}
	tempStore, err := ensureStoreDir(&cfg.storeDir, "connet-server-", cfg.logger)
	if err != nil {
		return nil, err
	}
	// Run removes the temporary store; nothing will if we fail here.
	defer removeOnError(tempStore, &err)
	key, err := store.LoadOrCreateKey(filepath.Join(cfg.storeDir, "stateless-reset.key"))
	if err != nil {
		return nil, err
	}
	resetKey := quic.StatelessResetKey(key)

	tokens := make([]control.Token, len(cfg.tokens))
	for i, secret := range cfg.tokens {
		tokens[i] = control.NewToken(secret)
		if i < len(cfg.restrictions) {
			r := cfg.restrictions[i]
			if !r.IP.Empty() {
				tokens[i].AllowAddr = r.IP.Allowed
			}
			tokens[i].NameMatches = r.NameMatches
			tokens[i].Role = r.Role
		}
	}
	relayTokens := make([]control.Token, len(cfg.relayTokens))
	for i, secret := range cfg.relayTokens {
		relayTokens[i] = control.NewToken(secret)
		if i < len(cfg.relayRestricts) && !cfg.relayRestricts[i].Empty() {
			relayTokens[i].AllowAddr = cfg.relayRestricts[i].Allowed
		}
	}
	grants, err := grant.LoadOrCreateSigner(filepath.Join(cfg.storeDir, "grant.key"))
	if err != nil {
		return nil, err
	}
	reg := metrics.NewRegistry(cfg.buildVersion)
	// The gauges read the server at scrape time, once it is built.
	var s *Server
	ctrlMetrics := metrics.NewControl(reg,
		func() int { clients, _ := s.control.Counts(); return clients },
		func() int { _, relays := s.control.Counts(); return relays })
	ctrl, err := control.New(control.Config{
		Ingresses:         controlIngresses(cfg.ingresses),
		Tokens:            tokens,
		Grants:            grants,
		RelayIngresses:    quicOnly(controlIngresses(cfg.relayControl)),
		RelayTokens:       relayTokens,
		QUIC:              tuning.QUIC(cfg.handshakeTimeout),
		StatelessResetKey: &resetKey,
		Logger:            cfg.logger,
		Network:           cfg.network,
		Metrics:           ctrlMetrics,
	})
	if err != nil {
		return nil, err
	}
	s = &Server{cfg: cfg, control: ctrl, tempStore: tempStore, started: time.Now(), metrics: reg}
	if len(cfg.relayIngresses) > 0 {
		relayMetrics := metrics.NewRelay(reg, func() int { return s.relay.Clients() })
		s.relay, err = newRelayServer(cfg.storeDir, cfg.relayIngresses, cfg.handshakeTimeout, grants.PublicKey, cfg.network, relayMetrics, cfg.logger)
		if err != nil {
			return nil, err
		}
	}
	if cfg.statusAddr != "" {
		if s.status, err = status.Listen(cfg.statusAddr); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if s.tempStore != "" {
		defer func() { _ = os.RemoveAll(s.tempStore) }()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	// Cancel before waiting: when control.Run fails on its own, ctx is
	// still alive and the goroutines below would wait for it forever.
	defer wg.Wait()
	defer cancel(nil)
	if s.status != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := status.Serve(ctx, s.status, func() any { return s.Status() }, metrics.Handler(s.metrics), s.cfg.logger); err != nil {
				cancel(err)
			}
		}()
	}
	if s.relay != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.relay.Run(ctx); err != nil {
				cancel(err)
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The in-process relay is offered to clients while it runs.
			bound := s.relay.Addrs(ctx)
			if bound == nil {
				return
			}
			id := s.relay.Identity()
			remove := s.control.AddRelay(id.ID, id.DER(), relayHostports(s.cfg.relayIngresses, bound))
			<-ctx.Done()
			remove()
		}()
	}
	return s.control.Run(ctx)
}

// quicOnly drops the TCP listeners: relays join their control server over
// QUIC only (a relay without UDP could not serve QUIC clients anyway).
func quicOnly(ins []control.Ingress) []control.Ingress {
	for i := range ins {
		ins[i].TCP, ins[i].WSS, ins[i].NoQUIC = false, false, false
	}
	return ins
}

func controlIngresses(ins []Ingress) []control.Ingress {
	out := make([]control.Ingress, len(ins))
	for i, in := range ins {
		out[i] = control.Ingress{Addr: in.Addr, Cert: in.Cert, NoQUIC: in.NoQUIC, TCP: !in.NoTCP, WSS: !in.NoWSS, TCPAddr: in.TCPAddr}
		if !in.Restriction.Empty() {
			out[i].AllowAddr = in.Restriction.Allowed
		}
	}
	return out
}

// ensureStoreDir makes a temporary store directory when none is set and
// returns it (to be removed when the owner stops), or "" if dir was set.
// Nothing kept there survives a restart, which the owner is warned about.
func ensureStoreDir(dir *string, prefix string, log *slog.Logger) (string, error) {
	if *dir != "" {
		return "", nil
	}
	tmp, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("store dir: %w", err)
	}
	log.Warn("no store-dir set: identity and keys are kept in a temporary directory and lost on restart", "dir", tmp)
	*dir = tmp
	return tmp, nil
}

// removeOnError removes the temporary store dir tmp (if any) when *err is
// set: the constructor that made it failed, so no Run will remove it.
func removeOnError(tmp string, err *error) {
	if tmp != "" && *err != nil {
		_ = os.RemoveAll(tmp)
	}
}

// relayHostports lists what clients dial; a hostport with port 0 (an
// ingress on a port chosen at bind time) gets the bound port.
func relayHostports(ins []RelayIngress, bound []net.Addr) []string {
	var out []string
	for i, in := range ins {
		for _, hp := range in.Hostports {
			if host, port, err := net.SplitHostPort(hp); err == nil && port == "0" && i < len(bound) {
				if ua, ok := bound[i].(*net.UDPAddr); ok {
					hp = net.JoinHostPort(host, strconv.Itoa(ua.Port))
				}
			}
			out = append(out, hp)
		}
	}
	return out
}

// newRelayServer makes a relay that keeps its identity and stateless reset
// key in storeDir, so clients' pins and connections survive its restart.
func newRelayServer(storeDir string, ins []RelayIngress, handshake time.Duration, grantKey func() ed25519.PublicKey, nw Network, m *metrics.Relay, log *slog.Logger) (*relay.Server, error) {
	id, err := identity.LoadOrCreate(filepath.Join(storeDir, "relay.pem"), "connet-relay")
	if err != nil {
		return nil, err
	}
	key, err := store.LoadOrCreateKey(filepath.Join(storeDir, "relay-stateless-reset.key"))
	if err != nil {
		return nil, err
	}
	resetKey := quic.StatelessResetKey(key)
	ingresses := make([]relay.Ingress, len(ins))
	for i, in := range ins {
		ingresses[i] = relay.Ingress{Addr: in.Addr, NoQUIC: in.NoQUIC, TCP: !in.NoTCP, WSS: !in.NoWSS, TCPAddr: in.TCPAddr,
			Quotas: relay.Quotas{Streams: in.MaxClientStreams, Pending: in.MaxPendingStreams}}
		if !in.Restriction.Empty() {
			ingresses[i].AllowAddr = in.Restriction.Allowed
		}
	}
	return relay.New(relay.Config{
		Ingresses:         ingresses,
		Identity:          id,
		StatelessResetKey: &resetKey,
		QUIC:              tuning.QUIC(handshake),
		Logger:            log,
		GrantKey:          grantKey,
		Network:           nw,
		Metrics:           m,
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
