package connet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/p2pconnet/connet/internal/balance"
	"github.com/p2pconnet/connet/internal/endpoints"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/tunnel"
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
	ep  *endpoints.Endpoint
	cfg SourceConfig
}

// Source adds a source to the client and announces it to the control
// server.
func (c *Client) Source(ctx context.Context, cfg SourceConfig) (*Source, error) {
	var err error
	if cfg.Route, cfg.RelayEncryptions, err = c.checkEndpoint(peer.Source, cfg.Name, cfg.Route, cfg.RelayEncryptions); err != nil {
		return nil, err
	}
	if _, err := balance.ParsePolicy(string(cfg.LBPolicy)); err != nil {
		return nil, fmt.Errorf("source %q: %w", cfg.Name, err)
	}
	if _, err := balance.ParseRetry(string(cfg.LBRetry)); err != nil {
		return nil, fmt.Errorf("source %q: %w", cfg.Name, err)
	}
	if cfg.LBRetryMax < 0 || cfg.DialTimeout < 0 {
		return nil, fmt.Errorf("source %q: negative LBRetryMax or DialTimeout", cfg.Name)
	}
	retry := balance.Effective(cfg.LBPolicy, balance.Retry{Policy: cfg.LBRetry, Max: cfg.LBRetryMax})
	ep, err := c.addEndpoint(peer.EndpointKey{Name: cfg.Name, Role: peer.Source}, endpoints.Options{
		Route: cfg.Route, Encryptions: endpoints.Encryptions(cfg.RelayEncryptions),
		DialTimeout: cfg.DialTimeout, Policy: cfg.LBPolicy, Retry: retry,
	})
	if err != nil {
		return nil, err
	}
	policy := string(cfg.LBPolicy)
	if policy == "" {
		policy = "default"
	}
	c.cfg.logger.Info("source added", "name", cfg.Name, "route", string(cfg.Route), "lb-policy", policy, "lb-retry", string(retry.Policy))
	return &Source{ep: ep, cfg: cfg}, nil
}

// Config returns the source's config.
func (s *Source) Config() SourceConfig { return s.cfg }

// Close removes the source; connections already open go on.
func (s *Source) Close() error {
	s.ep.Close()
	return nil
}

// Dial opens a connection to a destination of the source's name.
func (s *Source) Dial(ctx context.Context) (net.Conn, error) {
	return s.DialFrom(ctx, netip.AddrPort{})
}

// DialFrom is Dial on behalf of a client at origin, which the destination
// may pass on to its service (PROXY protocol, X-Forwarded-For).
//
// Dial never waits for a destination that nothing suggests will come: with
// no destination peer online, with routes that share no kind of path, or
// with the source refused by the control server it fails at once. While a
// path to a known peer may still come up it waits for at most the
// handshake timeout, and each attempt at a peer for at most DialTimeout
// (which also bounds that first wait when it is shorter). The error then
// matches one of ErrNoPeer, ErrPeerUnreachable, ErrRouteMismatch and
// ErrEndpointRefused (and ErrNoDestination), or ctx's cause.
func (s *Source) DialFrom(ctx context.Context, origin netip.AddrPort) (net.Conn, error) {
	return s.DialEarly(ctx, origin, nil)
}

// DialEarly is DialFrom for a connection client that the caller accepted
// and will copy to the returned one: what client sends while the
// destination is being asked travels with the request, saving a round trip
// through the tunnel for clients that speak first (see tunnel.Early).
// Bytes go early only to the last destination peer the load balancer's
// retry policy lets the connection try (the only one, without retries),
// and once they went, a failure of that peer ends the dial rather than
// trying another of its paths: a peer that failed without refusing may
// have passed them to its service, and sending them again could repeat a
// request. It reads from client only until DialEarly returns, and what it
// read has been sent by then. A nil client makes it DialFrom.
func (s *Source) DialEarly(ctx context.Context, origin netip.AddrPort, client net.Conn) (net.Conn, error) {
	var early *tunnel.Early
	if client != nil {
		early = &tunnel.Early{From: client}
	}
	conn, err := s.ep.Dial(ctx, origin, early)
	s.ep.RecordError(err, ReasonOf(err))
	return conn, err
}
