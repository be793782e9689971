package direct

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/backoff"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/quicdial"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/quic-go/quic-go"
)

// Retry bounds for punching a peer that is not reachable yet. The first
// retry comes quickly because the peer may simply have learnt about us a
// moment later than we learnt about it.
const (
	retryMin = 500 * time.Millisecond
	retryMax = 30 * time.Second
)

// pruneDelay is how long a new direct connection must live before a
// redundant one is retired in its favour. In TLS 1.3 the dialer finishes
// its handshake before the other side has checked its certificate (which
// may wait for the control server's word, up to two seconds), so a fresh
// outgoing connection is not proven yet; retiring the other one at once
// could leave neither.
const pruneDelay = 5 * time.Second

// Node makes and accepts the direct connections of one client.
type Node struct {
	Transport *quic.Transport
	Identity  *identity.Identity
	Registry  *peer.Registry
	Config    *quic.Config
	Logger    *slog.Logger
	// AllowDirect tells whether any endpoint shared with the peer lets
	// traffic go direct; without one the node neither dials nor accepts.
	AllowDirect func(peer.State) bool
	// OnPath is called for every new direct path, after it was added to its
	// peer; the caller starts serving the peer's streams on it.
	OnPath func(*peer.Peer, *netpath.QUIC)
	// SetupTime, if set, is told how long each successful punch took (the
	// dial of the peer's candidates).
	SetupTime func(time.Duration)

	// Punching through a symmetric NAT (punch.go). NAT tells how this
	// client's NAT maps (nil: unknown, no punching); PunchSecret is the
	// secret announced to peers, which tags the probes they send us;
	// ListenPacket opens a fresh UDP socket for the probes of the side
	// behind the symmetric NAT (nil: that side is never taken).
	NAT          func() peer.NAT
	PunchSecret  []byte
	ListenPacket func(context.Context) (net.PacketConn, error)
	// NonQUIC, if set, is given the main socket's non-QUIC packets that
	// are not punch probes (see ServeProbes); b is only valid during the
	// call.
	NonQUIC func(b []byte, from netip.AddrPort)

	// probeMu guards attempts, the easy-side punches in progress by peer.
	probeMu  sync.Mutex
	attempts map[identity.ID]*easyAttempt
	// punches are the attempts running now, at most maxPunches.
	punches slots
	// probes is what is left of the probe budget of each target
	// (budget.go): it outlives peers, so a peer that comes back does not
	// get a fresh one.
	probes probeBudget

	// wg owns the goroutines the node starts on its own: the delayed
	// prunes and the retiring paths. Wait waits for them.
	wg sync.WaitGroup
}

// Wait waits for the goroutines the node started. Call it once Accept and
// every Maintain have returned (the registry is closed, so every peer is
// gone): nothing then starts new ones.
func (n *Node) Wait() { n.wg.Wait() }

// Accept takes incoming peer connections from ln until ctx ends.
func (n *Node) Accept(ctx context.Context, ln *quic.Listener) error {
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			return err
		}
		n.adopt(conn, netpath.DirectIncoming)
	}
}

// adopt attaches an established connection to the peer whose pinned
// certificate it carries.
func (n *Node) adopt(conn *quic.Conn, kind netpath.Kind) {
	id, err := identity.PeerID(conn.ConnectionState().TLS)
	if err != nil {
		_ = conn.CloseWithError(1, "no certificate")
		return
	}
	p := n.Registry.Get(id)
	if p == nil {
		_ = conn.CloseWithError(1, "unknown peer")
		return
	}
	st, _ := p.State()
	if !n.AllowDirect(st) {
		_ = conn.CloseWithError(1, "no endpoint allows direct routes")
		return
	}
	qp := netpath.NewQUIC(conn, kind, &n.wg)
	n.Logger.Info("direct path up", "peer", id, "path", qp)
	p.AddPath(qp)
	n.OnPath(p, qp)
	n.wg.Go(func() {
		t := time.NewTimer(pruneDelay)
		defer t.Stop()
		select {
		case <-t.C:
			n.prune(p)
		case <-p.Gone():
		}
	})
}

// prune retires redundant direct connections, once pruneDelay has shown
// that the one kept works. Both peers dial at once, so
// often both directions succeed; one is enough. Both sides keep the
// connection dialed by the peer with the smaller identity, so they agree
// without talking about it. A retired connection takes no new streams and
// closes once the ones it carries have ended.
func (n *Node) prune(p *peer.Peer) {
	keep := netpath.DirectIncoming
	if bytes.Compare(n.Identity.ID[:], p.ID[:]) < 0 {
		keep = netpath.DirectOutgoing
	}
	drop := netpath.DirectOutgoing
	if keep == netpath.DirectOutgoing {
		drop = netpath.DirectIncoming
	}
	st, _ := p.State()
	if !slices.ContainsFunc(st.Paths, func(pp netpath.Path) bool { return pp.Kind() == keep && netpath.Usable(pp) }) {
		return
	}
	for _, pp := range st.Paths {
		if q, ok := pp.(*netpath.QUIC); ok && q.Kind() == drop && !q.Retired() {
			n.Logger.Debug("retiring redundant direct path", "peer", p.ID, "path", q)
			q.Retire(&n.wg)
		}
	}
}

// Maintain keeps a direct path to p while the control server announces it
// and routes allow it, punching again whenever the last one dies. It is the
// registry's per-peer hook and returns once the peer is gone.
func (n *Node) Maintain(p *peer.Peer) {
	ctx, cancel := context.WithCancel(context.Background())
	// Tied to Maintain: it ends with the peer or when Maintain returns.
	var watch sync.WaitGroup
	defer watch.Wait()
	defer cancel()
	watch.Go(func() {
		select {
		case <-p.Gone():
			cancel()
		case <-ctx.Done():
		}
	})

	// Birthday punches run beside the dials: they take up to punchWindow
	// and must overlap with the peer's, which starts when it hears of us.
	watch.Go(func() { n.punchLoop(ctx, p) })

	bo := backoff.Backoff{Min: retryMin, Max: retryMax}
	for {
		st, changed := p.State()
		if !st.Announced || st.HasDirect() || !n.AllowDirect(st) {
			bo.Reset()
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return
			}
		}
		tlsConf := n.Identity.PinnedClientConfig(st.Info.Cert, wire.ALPNPeer)
		n.Logger.Log(ctx, logs.LevelFine, "probing peer", "peer", p.ID, "candidates", st.Info.Candidates)
		start := time.Now()
		dctx, dcancel := untilCandidatesChange(ctx, p, st.Info.Candidates)
		conn, err := quicdial.Any(dctx, n.Transport, st.Info.Candidates, tlsConf, n.Config, n.Logger.With("peer", p.ID))
		dcancel()
		if err == nil {
			if n.SetupTime != nil {
				n.SetupTime(time.Since(start))
			}
			bo.Reset()
			n.adopt(conn, netpath.DirectOutgoing)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if now, _ := p.State(); !slices.Equal(now.Info.Candidates, st.Info.Candidates) {
			n.Logger.Debug("peer's candidates changed: dialing them now", "peer", p.ID)
			continue
		}
		delay := bo.Next()
		n.Logger.Debug("direct dial failed", "peer", p.ID, "candidates", st.Info.Candidates, "retry_in_ms", logs.Millis(delay), logs.Err(err))
		if !n.waitRetry(ctx, p, st.Info.Candidates, delay) {
			return
		}
	}
}

// waitRetry waits for delay, cutting it short when the peer's candidates
// change or a direct path appears (for example one the peer dialed).
func (n *Node) waitRetry(ctx context.Context, p *peer.Peer, dialed []netip.AddrPort, delay time.Duration) bool {
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		st, changed := p.State()
		if st.HasDirect() || !slices.Equal(st.Info.Candidates, dialed) {
			return true
		}
		select {
		case <-timer.C:
			return true
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

// IsClosed tells whether err means the transport or listener was closed.
func IsClosed(err error) bool {
	return errors.Is(err, quic.ErrServerClosed) || errors.Is(err, quic.ErrTransportClosed) ||
		errors.Is(err, context.Canceled)
}
