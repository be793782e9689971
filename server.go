package connet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/control"
	"github.com/p2pconnet/connet/internal/restrict"
	"github.com/p2pconnet/connet/internal/status"
	"github.com/p2pconnet/connet/internal/store"
	"github.com/p2pconnet/connet/internal/tuning"
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
	storeDir         string
	statusAddr       string
	handshakeTimeout time.Duration
	logger           *slog.Logger
}

// ServerIngress adds an address at which clients are accepted.
func ServerIngress(in Ingress) ServerOption {
	return func(c *serverConfig) error {
		if in.Addr == "" {
			in.Addr = ":19190"
		}
		if len(in.Cert.Certificate) == 0 {
			return fmt.Errorf("connet: ingress %s: no certificate", in.Addr)
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

// ServerStoreDir sets where the server keeps state across restarts; by
// default a new temporary directory, so nothing survives a restart.
func ServerStoreDir(dir string) ServerOption {
	return func(c *serverConfig) error { c.storeDir = dir; return nil }
}

// ServerStatusAddress serves the server's status as JSON over HTTP.
func ServerStatusAddress(addr string) ServerOption {
	return func(c *serverConfig) error { c.statusAddr = addr; return nil }
}

// ServerHandshakeIdleTimeout sets how long a QUIC handshake may take.
func ServerHandshakeIdleTimeout(d time.Duration) ServerOption {
	return func(c *serverConfig) error { c.handshakeTimeout = d; return nil }
}

// ServerLogger sets the logger; by default nothing is logged.
func ServerLogger(l *slog.Logger) ServerOption {
	return func(c *serverConfig) error { c.logger = l; return nil }
}

// Server runs a control server.
type Server struct {
	cfg     *serverConfig
	control *control.Server
	status  net.Listener
	// tempStore is a store dir made for this run only, removed after it.
	tempStore string
}

// NewServer validates the options and prepares a server; Run starts it.
func NewServer(opts ...ServerOption) (*Server, error) {
	cfg := &serverConfig{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(cfg); err != nil {
			return nil, err
		}
	}
	if len(cfg.ingresses) == 0 {
		return nil, errors.New("connet: server needs at least one ingress")
	}
	if len(cfg.tokens) == 0 {
		return nil, errors.New("connet: server needs at least one client token")
	}
	if len(cfg.restrictions) > 0 && len(cfg.restrictions) != len(cfg.tokens) {
		return nil, fmt.Errorf("connet: %d token restrictions for %d tokens", len(cfg.restrictions), len(cfg.tokens))
	}
	var tempStore string
	if cfg.storeDir == "" {
		dir, err := os.MkdirTemp("", "connet-server-")
		if err != nil {
			return nil, fmt.Errorf("connet: store dir: %w", err)
		}
		cfg.logger.Warn("no store-dir set: state is kept in a temporary directory and lost on restart", "dir", dir)
		cfg.storeDir, tempStore = dir, dir
	}
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
	ingresses := make([]control.Ingress, len(cfg.ingresses))
	for i, in := range cfg.ingresses {
		ingresses[i] = control.Ingress{Addr: in.Addr, Cert: in.Cert}
		if !in.Restriction.Empty() {
			ingresses[i].AllowAddr = in.Restriction.Allowed
		}
	}
	ctrl, err := control.New(control.Config{
		Ingresses:         ingresses,
		Tokens:            tokens,
		QUIC:              tuning.QUIC(cfg.handshakeTimeout),
		StatelessResetKey: &resetKey,
		Logger:            cfg.logger,
	})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, control: ctrl, tempStore: tempStore}
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
	defer cancel(nil)
	var wg sync.WaitGroup
	defer wg.Wait()
	if s.status != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := status.Serve(ctx, s.status, func() any { return s.Status() }, s.cfg.logger); err != nil {
				cancel(err)
			}
		}()
	}
	return s.control.Run(ctx)
}

// Addrs returns the addresses the ingresses are bound to, once they are
// (useful with port 0), or nil if ctx ends first.
func (s *Server) Addrs(ctx context.Context) []net.Addr { return s.control.Addrs(ctx) }

// ServerStatus is a snapshot of a server, as its status page shows it.
type ServerStatus struct {
	Control control.Status `json:"control"`
}

// Status returns a snapshot of the server.
func (s *Server) Status() ServerStatus { return ServerStatus{Control: s.control.Status()} }
