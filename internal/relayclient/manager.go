package relayclient

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/backoff"
	"github.com/p2pconnet/connet/internal/direct"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/liveness"
	"github.com/p2pconnet/connet/internal/notify"
	"github.com/p2pconnet/connet/internal/path"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
)

// Timing of relay connections.
const (
	// linger keeps a relay the control server stopped offering: during a
	// control server restart the offer disappears for a moment.
	linger = time.Minute
	// Reconnect bounds; quick at first so a restarted relay is back within
	// moments.
	retryMin = 100 * time.Millisecond
	retryMax = 10 * time.Second
)

// Config configures a Manager.
type Config struct {
	Transport *quic.Transport
	Identity  *identity.Identity
	QUIC      *quic.Config
	Logger    *slog.Logger
	// OnStream handles a stream another client opened to us through a
	// relay; from is that client's identity.
	OnStream func(from identity.ID, p *Path, s path.Stream)
}

// Status is one relay as the client's status page shows it.
type Status struct {
	ID        string   `json:"id"`
	Hostports []string `json:"hostports"`
	Connected bool     `json:"connected"`
	Remote    string   `json:"remote,omitempty"`
	RTTms     float64  `json:"rtt_ms,omitempty"`
	LastError string   `json:"last_error,omitempty"`
}

// Manager keeps the client's relay connections.
type Manager struct {
	cfg   Config
	grant notify.Value[*pb.SignedGrant]
	// conns holds the connected relays; it changes whenever one connects
	// or goes away.
	conns notify.Value[map[identity.ID]*relayConn]

	mu     sync.Mutex
	relays map[identity.ID]*relay
	closed bool
}

// relayConn is a live connection to a relay.
type relayConn struct {
	conn   *quic.Conn
	health *liveness.Health
}

type relay struct {
	info    *pb.Relay
	cancel  context.CancelFunc
	gone    *time.Timer
	lastErr string
}

// New returns a manager with no relays.
func New(cfg Config) *Manager {
	return &Manager{cfg: cfg, relays: map[identity.ID]*relay{}}
}

// Apply takes the relays and grant of the control server's latest state.
func (m *Manager) Apply(relays []*pb.Relay, g *pb.SignedGrant) {
	if g != nil {
		m.grant.Set(g)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	offered := map[identity.ID]bool{}
	for _, info := range relays {
		id, err := identity.ParseID(info.GetId())
		if err != nil || identity.IDOf(info.GetCertificate()) != id {
			m.cfg.Logger.Warn("ignoring malformed relay from control server", "err", err)
			continue
		}
		offered[id] = true
		if r := m.relays[id]; r != nil {
			if r.gone != nil {
				r.gone.Stop()
				r.gone = nil
			}
			r.info = info
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &relay{info: info, cancel: cancel}
		m.relays[id] = r
		go m.maintain(ctx, id, r)
	}
	for id, r := range m.relays {
		if !offered[id] && r.gone == nil {
			r.gone = time.AfterFunc(linger, func() { m.forget(id, r) })
		}
	}
}

func (m *Manager) forget(id identity.ID, r *relay) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.relays[id] == r && r.gone != nil {
		delete(m.relays, id)
		r.cancel()
	}
}

// Close drops every relay connection.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for id, r := range m.relays {
		if r.gone != nil {
			r.gone.Stop()
		}
		r.cancel()
		delete(m.relays, id)
	}
}

// Connected returns the relays connected now and a channel closed at the
// next change.
func (m *Manager) Connected() ([]identity.ID, <-chan struct{}) {
	conns, changed := m.conns.Get()
	ids := make([]identity.ID, 0, len(conns))
	for id := range conns {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b identity.ID) int { return slices.Compare(a[:], b[:]) })
	return ids, changed
}

// Offered tells whether the control server offers any relay.
func (m *Manager) Offered() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.relays) > 0
}

// Paths returns a path to peer through each connected relay the peer is
// also at.
func (m *Manager) Paths(peer identity.ID, peerRelays []identity.ID) []path.Path {
	conns := m.conns.Load()
	var out []path.Path
	for _, rid := range peerRelays {
		if rc := conns[rid]; rc != nil && rc.conn.Context().Err() == nil {
			out = append(out, &Path{Relay: rid, Peer: peer, conn: rc.conn, health: rc.health})
		}
	}
	return out
}

// Status lists the offered relays.
func (m *Manager) Status() []Status {
	conns := m.conns.Load()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []Status{}
	for id, r := range m.relays {
		st := Status{ID: id.String(), Hostports: r.info.GetHostports(), LastError: r.lastErr}
		if rc := conns[id]; rc != nil {
			st.Connected = true
			st.Remote = rc.conn.RemoteAddr().String()
			st.RTTms = float64(rc.conn.ConnectionStats().SmoothedRTT.Microseconds()) / 1000
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}

// maintain keeps a connection to one relay until ctx ends.
func (m *Manager) maintain(ctx context.Context, id identity.ID, r *relay) {
	bo := backoff.Backoff{Min: retryMin, Max: retryMax}
	for {
		err := m.connectOnce(ctx, id, r, &bo)
		if ctx.Err() != nil {
			return
		}
		m.mu.Lock()
		r.lastErr = err.Error()
		m.mu.Unlock()
		delay := bo.Next()
		m.cfg.Logger.Debug("relay connection lost", "relay", id, "retry", delay, "err", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
	}
}

func (m *Manager) connectOnce(ctx context.Context, id identity.ID, r *relay, bo *backoff.Backoff) error {
	m.mu.Lock()
	info := r.info
	m.mu.Unlock()
	g, err := m.grant.Wait(ctx, func(g *pb.SignedGrant) bool { return g != nil })
	if err != nil {
		return err
	}
	addrs := resolve(info.GetHostports())
	if len(addrs) == 0 {
		return fmt.Errorf("no address for hostports %v", info.GetHostports())
	}
	tlsConf := m.cfg.Identity.PinnedClientConfig(info.GetCertificate(), wire.ALPNRelay)
	conn, err := direct.DialAny(ctx, m.cfg.Transport, addrs, tlsConf, m.cfg.QUIC)
	if err != nil {
		return err
	}
	defer func() { _ = conn.CloseWithError(0, "client leaving") }()
	stream, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	_ = stream.SetDeadline(time.Now().Add(m.cfg.QUIC.HandshakeIdleTimeout))
	if err := wire.Write(stream, g); err != nil {
		return err
	}
	var reply pb.RelayReply
	if err := wire.Read(stream, &reply, wire.MaxControlMessage); err != nil {
		return err
	}
	if err := wire.FromPB(reply.GetError()); err != nil {
		return fmt.Errorf("relay refused the grant: %w", err)
	}
	_ = stream.SetDeadline(time.Time{})
	bo.Reset()
	m.cfg.Logger.Info("relay connected", "relay", id, "remote", conn.RemoteAddr())
	rc := &relayConn{conn: conn, health: liveness.Watch(conn)}
	m.conns.Update(func(old map[identity.ID]*relayConn) map[identity.ID]*relayConn {
		next := maps.Clone(old)
		if next == nil {
			next = map[identity.ID]*relayConn{}
		}
		next[id] = rc
		return next
	})
	defer m.conns.Update(func(old map[identity.ID]*relayConn) map[identity.ID]*relayConn {
		next := maps.Clone(old)
		if next[id] == rc {
			delete(next, id)
		}
		return next
	})

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() { cancel(m.sendGrants(ctx, stream, g)) }()
	go func() { cancel(m.accept(ctx, id, rc)) }()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-conn.Context().Done():
		return context.Cause(conn.Context())
	}
}

// sendGrants sends each new grant after the one the relay already has.
func (m *Manager) sendGrants(ctx context.Context, stream *quic.Stream, sent *pb.SignedGrant) error {
	for {
		g, changed := m.grant.Get()
		if g != sent {
			if err := wire.Write(stream, g); err != nil {
				return err
			}
			sent = g
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

// accept serves the streams the relay opens to us.
func (m *Manager) accept(ctx context.Context, rid identity.ID, rc *relayConn) error {
	conn, health := rc.conn, rc.health
	for {
		s, err := conn.AcceptStream(ctx)
		if err != nil {
			return err
		}
		go func() {
			st := path.WrapQUIC(s)
			_ = s.SetDeadline(time.Now().Add(tunnel.HeaderTimeout))
			var in pb.RelayIncoming
			if err := wire.Read(s, &in, wire.MaxStreamHeader); err != nil {
				st.Reset()
				return
			}
			_ = s.SetDeadline(time.Time{})
			from, err := identity.ParseID(in.GetPeer())
			if err != nil {
				st.Reset()
				return
			}
			m.cfg.OnStream(from, &Path{Relay: rid, Peer: from, conn: conn, health: health}, st)
		}()
	}
}

// resolve turns hostports into addresses, skipping those that do not
// resolve (a relay may advertise a name only some clients can resolve).
func resolve(hostports []string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, hp := range hostports {
		ua, err := net.ResolveUDPAddr("udp", hp)
		if err != nil {
			continue
		}
		out = append(out, ua.AddrPort())
	}
	return out
}
