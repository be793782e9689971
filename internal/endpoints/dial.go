package endpoints

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/p2pconnet/connet/internal/balance"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/tunnel"
)

// Dial opens a connection for a source: it tries the destination peers in the load balancer's order, as many
// as its retry policy allows.
func (s *Endpoint) Dial(ctx context.Context, origin netip.AddrPort, early *tunnel.Early) (net.Conn, error) {
	if s.IsClosed() {
		return nil, ErrClosed
	}
	targets, err := s.waitTargets(ctx)
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", s.Key.Name, err)
	}
	order := balance.Order(s.Policy, targets, s.turn.Add(1)-1, nil)
	caller := ctx
	if budget := s.Retry.Budget(); budget > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, budget, fmt.Errorf("lb-retry timed: no destination answered within %v", budget))
		defer cancel()
	}
	var errs []error
	refused := true
	targets = order[:s.Retry.Attempts(len(order))]
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
		return nil, fmt.Errorf("source %q: %w", s.Key.Name, logs.Join(errs...))
	}
	// Every peer tried refused: the destination's answer. Anything else
	// (a path that failed, no answer in time) means the peer was not
	// reached.
	reason := ErrPeerUnreachable
	if refused {
		reason = ErrEndpointRefused
	}
	return nil, fmt.Errorf("source %q: %w: %w", s.Key.Name, reason, logs.Join(errs...))
}

// attempt opens a connection to one destination peer, on its best path, or
// on the next ones while a path fails before the peer answers. A refusal is
// the peer's answer, which its other paths would only repeat.
func (s *Endpoint) attempt(ctx context.Context, t balance.Target, origin netip.AddrPort, early *tunnel.Early) (net.Conn, error) {
	if d := s.DialTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d, fmt.Errorf("no answer within dial-timeout %v", d))
		defer cancel()
	}
	req := tunnel.Request{Endpoint: s.Key.Name, Origin: origin}
	var errs []error
	for _, p := range t.Paths {
		stream, err := tunnel.Open(ctx, p, req, early)
		if err == nil {
			tracked := s.Track(stream, t.Peer, p, p.RemoteAddr())
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
func (s *Endpoint) waitTargets(ctx context.Context) ([]balance.Target, error) {
	t := s.table
	wait := t.cfg.HandshakeTimeout
	if d := s.DialTimeout; d > 0 && d < wait {
		wait = d
	}
	var timeout <-chan time.Time
	for {
		changed := t.cfg.Registry.Changed()
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
		case <-s.closed:
			return nil, ErrClosed
		}
	}
}

// targets returns the destination peers with the usable paths both ends'
// routes allow, and whether a peer without one may still become reachable.
// With neither, err says why no peer can be used.
func (s *Endpoint) targets() (targets []balance.Target, pending bool, err error) {
	t := s.table
	if err := t.Refusal(s.Key); err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrEndpointRefused, err)
	}
	peers := t.cfg.Registry.WithEndpoint(s.Key.Name, peer.Destination)
	mismatched := 0
	var mismatch netpath.Route
	for _, p := range peers {
		st, _ := p.State()
		e, _ := st.Endpoint(s.Key.Name, peer.Destination)
		paths := st.UsablePaths(s.Route, e.Route)
		if len(paths) == 0 {
			direct := s.Route.Allows(netpath.DirectOutgoing) && e.Route.Allows(netpath.DirectOutgoing)
			relay := s.Route.Allows(netpath.Relay) && e.Route.Allows(netpath.Relay)
			if !direct && !relay {
				mismatched++
				mismatch = e.Route
			}
			pending = pending || (st.Announced && (direct && !st.HasDirect() || relay && t.cfg.RelaysOffered()))
			continue
		}
		targets = append(targets, balance.Target{Peer: p.ID, Paths: paths, Active: s.ActiveWith(p.ID)})
	}
	switch {
	case len(targets) > 0 || pending:
		return targets, pending, nil
	case len(peers) == 0:
		return nil, false, fmt.Errorf("%w%s", ErrNoPeer, s.controlHint())
	case mismatched == len(peers):
		return nil, false, fmt.Errorf("%w: source route %s, destination route %s", ErrRouteMismatch, s.Route, mismatch)
	}
	return nil, false, fmt.Errorf("%w: %d destination peer(s) online, none with a path", ErrPeerUnreachable, len(peers))
}

// controlHint explains an empty peer list by a control server not reached.
func (s *Endpoint) controlHint() string {
	connected, lastErr := s.table.cfg.Control()
	if connected {
		return ""
	}
	if lastErr != "" {
		return " (not connected to the control server: " + lastErr + ")"
	}
	return " (not connected to the control server yet)"
}
