package connet

import (
	"context"
	"fmt"
	"github.com/p2pconnet/connet/internal/logs"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/p2pconnet/connet/internal/balance"
	"github.com/p2pconnet/connet/internal/endpoints"
	"github.com/p2pconnet/connet/internal/netpath"
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
	client *Client
	ep     *endpoints.Endpoint
	cfg    SourceConfig
	retry  balance.Retry
	// turn counts connections, for round-robin.
	turn atomic.Uint64
}

// Source adds a source to the client and announces it to the control
// server.
func (c *Client) Source(ctx context.Context, cfg SourceConfig) (*Source, error) {
	if cfg.Name == "" {
		return nil, fmt.Errorf("source needs a name")
	}
	if len(cfg.Name) > wire.MaxNameLen {
		return nil, fmt.Errorf("source name of %d bytes (at most %d)", len(cfg.Name), wire.MaxNameLen)
	}
	if cfg.Route == "" {
		cfg.Route = RouteAny
	}
	if _, err := ParseRoute(string(cfg.Route)); err != nil {
		return nil, fmt.Errorf("source %q: %w", cfg.Name, err)
	}
	if len(cfg.RelayEncryptions) == 0 {
		cfg.RelayEncryptions = c.cfg.relayEncryptions
	}
	if err := checkEncryptions(cfg.RelayEncryptions); err != nil {
		return nil, fmt.Errorf("source %q: %w", cfg.Name, err)
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
	ep, err := c.addEndpoint(peer.EndpointKey{Name: cfg.Name, Role: peer.Source}, cfg.Route, cfg.RelayEncryptions)
	if err != nil {
		return nil, err
	}
	s := &Source{
		client: c,
		ep:     ep,
		cfg:    cfg,
		retry:  balance.Effective(cfg.LBPolicy, balance.Retry{Policy: cfg.LBRetry, Max: cfg.LBRetryMax}),
	}
	policy := string(cfg.LBPolicy)
	if policy == "" {
		policy = "default"
	}
	c.cfg.logger.Info("source added", "name", cfg.Name, "route", string(cfg.Route), "lb-policy", policy, "lb-retry", string(s.retry.Policy))
	return s, nil
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
	conn, err := s.dial(ctx, origin, early)
	s.ep.RecordError(err, ReasonOf(err))
	return conn, err
}

// dial tries the destination peers in the load balancer's order, as many
// as its retry policy allows.
func (s *Source) dial(ctx context.Context, origin netip.AddrPort, early *tunnel.Early) (net.Conn, error) {
	if s.ep.IsClosed() {
		return nil, ErrClosed
	}
	targets, err := s.waitTargets(ctx)
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", s.cfg.Name, err)
	}
	order := balance.Order(s.cfg.LBPolicy, targets, s.turn.Add(1)-1, nil)
	caller := ctx
	if budget := s.retry.Budget(); budget > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, budget, fmt.Errorf("lb-retry timed: no destination answered within %v", budget))
		defer cancel()
	}
	var errs []error
	refused := true
	targets = order[:s.retry.Attempts(len(order))]
	for i, t := range targets {
		// Bytes go early only to the last peer the policy lets this
		// connection try: after they went, a peer that fails without
		// refusing (dead, or slow past dial-timeout) may have passed them
		// to its service, so trying another could repeat a request; a
		// peer before the last must stay free to fail over.
		var e *tunnel.Early
		if i == len(targets)-1 {
			e = early
		}
		conn, err := s.attempt(ctx, t, origin, e)
		if err == nil {
			return conn, nil
		}
		refused = refused && tunnel.IsRefusal(err)
		errs = append(errs, fmt.Errorf("destination %s: %w", t.Peer, err))
		if ctx.Err() != nil {
			errs = append(errs, context.Cause(ctx))
			break
		}
	}
	if caller.Err() != nil {
		// The caller gave up: no reason of the destination's.
		return nil, fmt.Errorf("source %q: %w", s.cfg.Name, logs.Join(errs...))
	}
	// Every peer tried refused: the destination's answer. Anything else
	// (a path that failed, no answer in time) means the peer was not
	// reached.
	reason := ErrPeerUnreachable
	if refused {
		reason = ErrEndpointRefused
	}
	return nil, fmt.Errorf("source %q: %w: %w", s.cfg.Name, reason, logs.Join(errs...))
}

// attempt opens a connection to one destination peer, on its best path, or
// on the next ones while a path fails before the peer answers. A refusal is
// the peer's answer, which its other paths would only repeat.
func (s *Source) attempt(ctx context.Context, t balance.Target, origin netip.AddrPort, early *tunnel.Early) (net.Conn, error) {
	if d := s.cfg.DialTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d, fmt.Errorf("no answer within dial-timeout %v", d))
		defer cancel()
	}
	req := tunnel.Request{Endpoint: s.cfg.Name, Origin: origin}
	var errs []error
	for _, p := range t.Paths {
		stream, err := tunnel.Open(ctx, p, req, early)
		if err == nil {
			tracked := s.ep.Track(stream, t.Peer, p, p.RemoteAddr())
			if early != nil {
				tracked.SentEarly(early.Sent)
			}
			return tracked, nil
		}
		if tunnel.IsRefusal(err) || !early.MayRetry(err) || ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, fmt.Errorf("%s %s: %w", p.Kind(), p.RemoteAddr(), err))
	}
	return nil, logs.Join(errs...)
}

// waitTargets returns the destination peers with usable paths. While a peer
// is still being reached it waits for a path, for at most a handshake
// timeout (or DialTimeout when shorter); when nothing suggests a path will
// come it fails at once, with the reason.
func (s *Source) waitTargets(ctx context.Context) ([]balance.Target, error) {
	c := s.client
	wait := c.cfg.handshakeTimeout
	if d := s.cfg.DialTimeout; d > 0 && d < wait {
		wait = d
	}
	var timeout <-chan time.Time
	for {
		changed := c.registry.Changed()
		targets, pending, err := s.targets()
		if len(targets) > 0 {
			return targets, nil
		}
		if !pending {
			return nil, err
		}
		if timeout == nil {
			timer := time.NewTimer(wait)
			defer timer.Stop()
			timeout = timer.C
		}
		select {
		case <-changed:
		case <-timeout:
			return nil, fmt.Errorf("%w: no path came up in %v", ErrPeerUnreachable, wait)
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-s.ep.Closed():
			return nil, ErrClosed
		}
	}
}

// targets returns the destination peers with the usable paths both ends'
// routes allow, and whether a peer without one may still become reachable.
// With neither, err says why no peer can be used.
func (s *Source) targets() (targets []balance.Target, pending bool, err error) {
	c := s.client
	if err := c.endpoints.Refusal(s.ep.Key); err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrEndpointRefused, err)
	}
	peers := c.registry.WithEndpoint(s.cfg.Name, peer.Destination)
	mismatched := 0
	var mismatch netpath.Route
	for _, p := range peers {
		st, _ := p.State()
		e, _ := st.Endpoint(s.cfg.Name, peer.Destination)
		paths := st.UsablePaths(s.cfg.Route, e.Route)
		if len(paths) == 0 {
			direct := s.cfg.Route.Allows(netpath.DirectOutgoing) && e.Route.Allows(netpath.DirectOutgoing)
			relay := s.cfg.Route.Allows(netpath.Relay) && e.Route.Allows(netpath.Relay)
			if !direct && !relay {
				mismatched++
				mismatch = e.Route
			}
			pending = pending || (st.Announced && (direct && !st.HasDirect() || relay && c.relays.Offered()))
			continue
		}
		targets = append(targets, balance.Target{Peer: p.ID, Paths: paths, Active: s.ep.ActiveWith(p.ID)})
	}
	switch {
	case len(targets) > 0 || pending:
		return targets, pending, nil
	case len(peers) == 0:
		return nil, false, fmt.Errorf("%w%s", ErrNoPeer, s.controlHint())
	case mismatched == len(peers):
		return nil, false, fmt.Errorf("%w: source route %s, destination route %s", ErrRouteMismatch, s.cfg.Route, mismatch)
	}
	return nil, false, fmt.Errorf("%w: %d destination peer(s) online, none with a path", ErrPeerUnreachable, len(peers))
}

// controlHint explains an empty peer list by a control server not reached.
func (s *Source) controlHint() string {
	st, _ := s.client.session.Status()
	if st.Connected {
		return ""
	}
	if st.LastError != "" {
		return " (not connected to the control server: " + st.LastError + ")"
	}
	return " (not connected to the control server yet)"
}
