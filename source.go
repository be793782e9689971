package connet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/p2pconnet/connet/internal/path"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/tunnel"
)

// SourceConfig describes a source: a way to reach the destinations of a
// name.
type SourceConfig struct {
	Name  string
	Route Route
	// DialTimeout bounds each Dial, including the destination's own dial
	// of its service; 0 waits as long as the caller's context allows.
	DialTimeout time.Duration
	// RelayEncryptions are the encryptions accepted over relays; empty
	// means the client's default (ClientRelayEncryptions).
	RelayEncryptions []RelayEncryption
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

// Source opens connections to the destinations of its name.
type Source struct {
	endpoint
	cfg SourceConfig
}

// Source adds a source to the client and announces it to the control
// server.
func (c *Client) Source(ctx context.Context, cfg SourceConfig) (*Source, error) {
	if cfg.Name == "" {
		return nil, fmt.Errorf("connet: source needs a name")
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
	s := &Source{
		endpoint: endpoint{client: c, key: endpointKey{cfg.Name, peer.Source}, closed: make(chan struct{})},
		cfg:      cfg,
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
	c.cfg.logger.Info("source added", "name", cfg.Name, "route", cfg.Route)
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
// may pass on to its service (PROXY protocol).
func (s *Source) DialFrom(ctx context.Context, origin netip.AddrPort) (net.Conn, error) {
	conn, err := s.dial(ctx, origin)
	s.recordError(err)
	return conn, err
}

func (s *Source) dial(ctx context.Context, origin netip.AddrPort) (net.Conn, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	if s.cfg.DialTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.DialTimeout)
		defer cancel()
	}
	paths, err := s.waitPaths(ctx)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, p := range paths {
		stream, err := s.open(ctx, p, tunnel.Request{Endpoint: s.cfg.Name, Origin: origin})
		if err == nil {
			conn := &tunnel.Conn{Stream: stream, Local: s.client.udp.LocalAddr(), Remote: p.RemoteAddr()}
			return s.track(conn), nil
		}
		if tunnel.IsRefusal(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("connet: source %q: %w", s.cfg.Name, err)
		}
		errs = append(errs, fmt.Errorf("%s %s: %w", p.Kind(), p.RemoteAddr(), err))
	}
	return nil, fmt.Errorf("connet: source %q: every path failed: %w", s.cfg.Name, errors.Join(errs...))
}

// open opens a stream on p and asks for the destination. A relayed stream
// first says, in the clear, which endpoint and encryption follow, and is
// then secured end to end before the request goes out.
func (s *Source) open(ctx context.Context, p route, req tunnel.Request) (path.Stream, error) {
	stream, err := p.OpenStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	if p.Kind() == path.Relay {
		if stream, err = s.client.secureOutgoing(ctx, p.peer, s.cfg.Name, stream); err != nil {
			return nil, err
		}
	}
	if err := tunnel.Ask(ctx, stream, req); err != nil {
		return nil, err
	}
	return stream, nil
}

// route is a path together with the peer at its end.
type route struct {
	path.Path
	peer *peer.Peer
}

// waitPaths returns the paths to try, best first: those of the best peer.
// While a peer is still being reached it waits for a path, for at most a
// handshake timeout; with no peer at all it fails at once.
func (s *Source) waitPaths(ctx context.Context) ([]route, error) {
	c := s.client
	var timeout <-chan time.Time
	for {
		changed := c.registry.Changed()
		_, relaysChanged := c.relays.Connected()
		paths, pending := s.routes()
		if len(paths) > 0 {
			return paths, nil
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
		case <-relaysChanged:
		case <-timeout:
			return nil, fmt.Errorf("%w for %q: no path came up in %v", ErrNoDestination, s.cfg.Name, c.cfg.handshakeTimeout)
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-s.closed:
			return nil, ErrClosed
		}
	}
}

// routes returns the usable paths to the best destination peer, best
// first, and whether some destination peer may still become reachable.
// A path must be allowed by the routes of both ends.
func (s *Source) routes() (best []route, pending bool) {
	c := s.client
	for _, p := range c.registry.WithEndpoint(s.cfg.Name, peer.Destination) {
		st, _ := p.State()
		e, _ := st.Endpoint(s.cfg.Name, peer.Destination)
		allowed := func(k path.Kind) bool { return s.cfg.Route.Allows(k) && e.Route.Allows(k) }
		var paths []path.Path
		for _, pp := range p.UsablePaths(s.cfg.Route) {
			if allowed(pp.Kind()) {
				paths = append(paths, pp)
			}
		}
		// A relay path says nothing about the peer's health, so it is
		// used only while the control server (which drops silent clients
		// within seconds) still names the peer.
		if allowed(path.Relay) && st.Announced {
			paths = append(paths, c.relays.Paths(p.ID, st.Info.Relays)...)
		}
		if len(paths) == 0 {
			pending = pending || (st.Announced && ((allowed(path.DirectOutgoing) && !st.HasDirect()) || (allowed(path.Relay) && c.relays.Offered())))
			continue
		}
		path.Sort(paths)
		if best == nil || path.Better(paths[0], best[0].Path) < 0 {
			best = best[:0]
			for _, pp := range paths {
				best = append(best, route{pp, p})
			}
		}
	}
	return best, pending
}
