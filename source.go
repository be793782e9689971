package connet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/p2pconnet/connet/internal/balance"
	"github.com/p2pconnet/connet/internal/path"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
)

// LBPolicy orders the destination peers a source tries for a new
// connection (the config's lb-policy).
type LBPolicy = balance.Policy

// Load balancer policies.
const (
	// LBDefault tries every destination peer, best path first: the peer
	// with the best path takes every connection while it answers.
	LBDefault = balance.Default
	// LBLeastLatency orders peers by their best path: healthy before
	// silent, direct before relayed, then by lower RTT.
	LBLeastLatency = balance.LeastLatency
	// LBLeastConns orders peers by the connections this source has open
	// to them, fewest first.
	LBLeastConns = balance.LeastConns
	// LBRoundRobin gives each peer its turn.
	LBRoundRobin = balance.RoundRobin
	// LBRandom shuffles the peers for each connection.
	LBRandom = balance.Random
)

// LBRetry says how many of the ordered peers a source tries (the config's
// lb-retry); with an LBPolicy set, the default is LBRetryNever.
type LBRetry = balance.RetryPolicy

// Load balancer retry policies.
const (
	// LBRetryNever tries the first peer only.
	LBRetryNever = balance.Never
	// LBRetryCount tries up to LBRetryMax peers (default 2).
	LBRetryCount = balance.Count
	// LBRetryTimed keeps trying peers for LBRetryMax milliseconds
	// (default 1000).
	LBRetryTimed = balance.Timed
	// LBRetryAll tries every peer.
	LBRetryAll = balance.All
)

// SourceConfig describes a source: a way to reach the destinations of a
// name.
type SourceConfig struct {
	Name  string
	Route Route
	// DialTimeout bounds each attempt at one destination peer: opening the
	// stream, the destination's dial of its service and its answer. 0
	// leaves it to the caller's context.
	DialTimeout time.Duration
	// RelayEncryptions are the encryptions accepted over relays; empty
	// means the client's default (ClientRelayEncryptions).
	RelayEncryptions []RelayEncryption
	// LBPolicy orders the destination peers; LBDefault tries them all, best
	// path first.
	LBPolicy LBPolicy
	// LBRetry and LBRetryMax say how many peers to try once LBPolicy is
	// set (without LBPolicy every peer is tried).
	LBRetry    LBRetry
	LBRetryMax int
}

// NewSourceConfig returns the config of a source named name that accepts
// any route.
func NewSourceConfig(name string) SourceConfig {
	return SourceConfig{Name: name, Route: RouteAny}
}

// WithRoute returns a copy of cfg with the given route.
func (cfg SourceConfig) WithRoute(r Route) SourceConfig {
	cfg.Route = r
	return cfg
}

// WithLoadBalancer returns a copy of cfg with the given load balancing.
func (cfg SourceConfig) WithLoadBalancer(p LBPolicy, r LBRetry, max int) SourceConfig {
	cfg.LBPolicy, cfg.LBRetry, cfg.LBRetryMax = p, r, max
	return cfg
}

// Source opens connections to the destinations of its name.
type Source struct {
	endpoint
	cfg   SourceConfig
	retry balance.Retry
	// turn counts connections, for round-robin.
	turn atomic.Uint64
}

// Source adds a source to the client and announces it to the control
// server.
func (c *Client) Source(ctx context.Context, cfg SourceConfig) (*Source, error) {
	if cfg.Name == "" {
		return nil, fmt.Errorf("connet: source needs a name")
	}
	if len(cfg.Name) > wire.MaxNameLen {
		return nil, fmt.Errorf("connet: source name of %d bytes (at most %d)", len(cfg.Name), wire.MaxNameLen)
	}
	if cfg.Route == "" {
		cfg.Route = RouteAny
	}
	if _, err := ParseRoute(string(cfg.Route)); err != nil {
		return nil, fmt.Errorf("connet: source %q: %w", cfg.Name, err)
	}
	if len(cfg.RelayEncryptions) == 0 {
		cfg.RelayEncryptions = c.cfg.relayEncryptions
	}
	if err := checkEncryptions(cfg.RelayEncryptions); err != nil {
		return nil, fmt.Errorf("connet: source %q: %w", cfg.Name, err)
	}
	if _, err := balance.ParsePolicy(string(cfg.LBPolicy)); err != nil {
		return nil, fmt.Errorf("connet: source %q: %w", cfg.Name, err)
	}
	if _, err := balance.ParseRetry(string(cfg.LBRetry)); err != nil {
		return nil, fmt.Errorf("connet: source %q: %w", cfg.Name, err)
	}
	if cfg.LBRetryMax < 0 || cfg.DialTimeout < 0 {
		return nil, fmt.Errorf("connet: source %q: negative LBRetryMax or DialTimeout", cfg.Name)
	}
	s := &Source{
		endpoint: newEndpoint(c, endpointKey{cfg.Name, peer.Source}),
		cfg:      cfg,
		retry:    balance.Effective(cfg.LBPolicy, balance.Retry{Policy: cfg.LBRetry, Max: cfg.LBRetryMax}),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if c.sources[cfg.Name] != nil {
		return nil, fmt.Errorf("%w: source %q", ErrEndpointExists, cfg.Name)
	}
	c.sources[cfg.Name] = s
	c.updateAnnounceLocked()
	c.cfg.logger.Info("source added", "name", cfg.Name, "route", cfg.Route, "lb-policy", cfg.LBPolicy, "lb-retry", s.retry.Policy)
	return s, nil
}

// Config returns the source's config.
func (s *Source) Config() SourceConfig { return s.cfg }

// Close removes the source; connections already open go on.
func (s *Source) Close() error {
	s.close(func() {
		if s.client.sources[s.cfg.Name] == s {
			delete(s.client.sources, s.cfg.Name)
		}
	})
	return nil
}

// Dial opens a connection to a destination of the source's name.
func (s *Source) Dial(ctx context.Context) (net.Conn, error) {
	return s.DialFrom(ctx, netip.AddrPort{})
}

// DialFrom is Dial on behalf of a client at origin, which the destination
// may pass on to its service (PROXY protocol, X-Forwarded-For).
func (s *Source) DialFrom(ctx context.Context, origin netip.AddrPort) (net.Conn, error) {
	conn, err := s.dial(ctx, origin)
	s.recordError(err)
	return conn, err
}

// dial tries the destination peers in the load balancer's order, as many
// as its retry policy allows.
func (s *Source) dial(ctx context.Context, origin netip.AddrPort) (net.Conn, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	targets, err := s.waitTargets(ctx)
	if err != nil {
		return nil, fmt.Errorf("connet: source %q: %w", s.cfg.Name, err)
	}
	order := balance.Order(s.cfg.LBPolicy, targets, s.turn.Add(1)-1, nil)
	if budget := s.retry.Budget(); budget > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, budget, fmt.Errorf("lb-retry timed: no destination answered within %v", budget))
		defer cancel()
	}
	var errs []error
	for _, t := range order[:s.retry.Attempts(len(order))] {
		conn, err := s.attempt(ctx, t, origin)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, fmt.Errorf("destination %s: %w", t.Peer, err))
		if ctx.Err() != nil {
			errs = append(errs, context.Cause(ctx))
			break
		}
	}
	return nil, fmt.Errorf("connet: source %q: %w", s.cfg.Name, errors.Join(errs...))
}

// attempt opens a connection to one destination peer, on its best path, or
// on the next ones while a path fails before the peer answers. A refusal is
// the peer's answer, which its other paths would only repeat.
func (s *Source) attempt(ctx context.Context, t balance.Target, origin netip.AddrPort) (net.Conn, error) {
	if d := s.cfg.DialTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d, fmt.Errorf("no answer within dial-timeout %v", d))
		defer cancel()
	}
	req := tunnel.Request{Endpoint: s.cfg.Name, Origin: origin}
	var errs []error
	for _, p := range t.Paths {
		stream, err := tunnel.Open(ctx, p, req)
		if err == nil {
			conn := &tunnel.Conn{Stream: stream, Local: s.client.udp.LocalAddr(), Remote: p.RemoteAddr()}
			return s.track(conn, t.Peer, p.Kind()), nil
		}
		if tunnel.IsRefusal(err) || ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, fmt.Errorf("%s %s: %w", p.Kind(), p.RemoteAddr(), err))
	}
	return nil, errors.Join(errs...)
}

// waitTargets returns the destination peers with usable paths. While a peer
// is still being reached it waits for a path, for at most a handshake
// timeout; with no peer at all it fails at once.
func (s *Source) waitTargets(ctx context.Context) ([]balance.Target, error) {
	c := s.client
	var timeout <-chan time.Time
	for {
		changed := c.registry.Changed()
		targets, pending := s.targets()
		if len(targets) > 0 {
			return targets, nil
		}
		if !pending {
			return nil, fmt.Errorf("%w for %q", ErrNoDestination, s.cfg.Name)
		}
		if timeout == nil {
			timer := time.NewTimer(c.cfg.handshakeTimeout)
			defer timer.Stop()
			timeout = timer.C
		}
		select {
		case <-changed:
		case <-timeout:
			return nil, fmt.Errorf("%w for %q: no path came up in %v", ErrNoDestination, s.cfg.Name, c.cfg.handshakeTimeout)
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-s.closed:
			return nil, ErrClosed
		}
	}
}

// targets returns the destination peers with the usable paths both ends'
// routes allow, and whether a peer without one may still become reachable.
func (s *Source) targets() (targets []balance.Target, pending bool) {
	c := s.client
	for _, p := range c.registry.WithEndpoint(s.cfg.Name, peer.Destination) {
		st, _ := p.State()
		e, _ := st.Endpoint(s.cfg.Name, peer.Destination)
		paths := st.UsablePaths(s.cfg.Route, e.Route)
		if len(paths) == 0 {
			direct := s.cfg.Route.Allows(path.DirectOutgoing) && e.Route.Allows(path.DirectOutgoing)
			relay := s.cfg.Route.Allows(path.Relay) && e.Route.Allows(path.Relay)
			pending = pending || (st.Announced && (direct && !st.HasDirect() || relay && c.relays.Offered()))
			continue
		}
		targets = append(targets, balance.Target{Peer: p.ID, Paths: paths, Active: s.activeWith(p.ID)})
	}
	return targets, pending
}
