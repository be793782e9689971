package relayclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/liveness"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/notify"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/quicdial"
	"github.com/p2pconnet/connet/internal/redial"
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
	// Peers are the client's peers; the manager keeps a relay path on each
	// one that shares a connected relay with us.
	Peers *peer.Registry
	// Secure encrypts relayed streams end to end.
	Secure Securer
	// Admit counts a stream a peer opened through a relay as one of the
	// peer's streams waiting for an answer, as soon as the relay names the
	// peer, or refuses it: the stream is then reset, nothing more read.
	// answered ends the wait (see OnStream).
	Admit func(from *peer.Peer) (answered func(), ok bool)
	// OnStream handles a stream another client opened to us through a
	// relay, once secured; endpoint is what its clear hello named. It
	// calls answered, Admit's, once the stream is answered.
	OnStream func(from *peer.Peer, p *Path, s netpath.Stream, endpoint string, answered func())
	// SetupTime, if set, is told how long each connection to a relay took
	// to set up: the dial and the relay's answer to the grant.
	SetupTime func(time.Duration)
	// TCP, if set, dials a relay's hostport over a TCP transport: used
	// while the client is on TCP (see SetTransport) and when a QUIC
	// handshake to the relay times out. Nil means QUIC only.
	TCP func(hostport string) muxconn.Dialer
}

// Status is one relay as the client's status page shows it.
type Status struct {
	ID        string   `json:"id"`
	Hostports []string `json:"hostports"`
	Connected bool     `json:"connected"`
	Remote    string   `json:"remote,omitempty"`
	// Transport carries the connection while Connected.
	Transport string  `json:"transport,omitempty"`
	RTTms     float64 `json:"rtt_ms,omitempty"`
	LastError string  `json:"last_error,omitempty"`
}

// ErrIdentityChanged reports a relay at its advertised address that no
// longer presents the certificate the control server pinned for it. The
// usual cause is a relay restarted without its store-dir: it made a new
// identity, and the control server offers the old one until it learns of
// the new.
var ErrIdentityChanged = errors.New("relay identity changed (restarted without its store-dir?)")

// codeStale closes a relay connection that went silent.
const codeStale quic.ApplicationErrorCode = 2

// Manager keeps the client's relay connections.
type Manager struct {
	cfg   Config
	grant notify.Value[*pb.SignedGrant]
	// onTCP is set while the client reaches its control server over TCP:
	// UDP is blocked, so relays are dialed over TCP at once.
	onTCP atomic.Bool
	// conns holds the connected relays; it changes whenever one connects
	// or goes away.
	conns notify.Value[map[identity.ID]*relayConn]

	mu     sync.Mutex
	relays map[identity.ID]*relay
	closed bool
	// paths are the relay paths on peers, kept by syncPaths.
	paths map[pathKey]*Path
	// wg owns the maintain goroutine of every relay (and, through
	// connectOnce, everything each one starts); Close waits for it.
	wg sync.WaitGroup
}

type pathKey struct{ relay, peer identity.ID }

// relayConn is a live connection to a relay.
type relayConn struct {
	conn   muxconn.Conn
	health *liveness.Health
	// observed is where the relay saw our packets come from, signed by
	// the relay for the control server (nil if the relay did not say).
	observed *pb.SignedObservation
}

type relay struct {
	info    *pb.Relay
	cancel  context.CancelFunc
	gone    *time.Timer
	lastErr string
}

// New returns a manager with no relays.
func New(cfg Config) *Manager {
	return &Manager{cfg: cfg, relays: map[identity.ID]*relay{}, paths: map[pathKey]*Path{}}
}

// Observed lists where the connected relays see this client's packets
// come from, as each relay signed it for the control server, in the order
// of the relays' ids; and a channel closed when the set of connected
// relays changes.
func (m *Manager) Observed() ([]*pb.SignedObservation, <-chan struct{}) {
	conns, changed := m.conns.Get()
	var out []*pb.SignedObservation
	for _, id := range slices.SortedFunc(maps.Keys(conns), func(a, b identity.ID) int { return slices.Compare(a[:], b[:]) }) {
		if so := conns[id].observed; so != nil {
			out = append(out, so)
		}
	}
	return out, changed
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
		if err == nil && identity.IDOf(info.GetCertificate()) != id {
			err = errors.New("id is not the certificate's")
		}
		if err != nil {
			m.cfg.Logger.Warn("ignoring malformed relay from control server", logs.Err(err))
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
		// Started under m.mu with closed false, so before Close waits.
		m.wg.Go(func() { m.maintain(ctx, id, r) })
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

// Close drops every relay connection and waits for the goroutines that
// kept them.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for id, r := range m.relays {
		if r.gone != nil {
			r.gone.Stop()
		}
		r.cancel()
		delete(m.relays, id)
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// SetTransport tells the manager how the client reaches its control
// server: over a TCP transport, relays are dialed over TCP too.
func (m *Manager) SetTransport(t muxconn.Transport) { m.onTCP.Store(t != muxconn.QUIC) }

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

// Run keeps a relay path on every peer the control server announces at a
// relay we are connected to, and ends the paths whose relay or peer left,
// until ctx ends. A relay path says nothing about the peer's own health, so
// it lives only while the control server (which drops silent clients
// within seconds) still names the peer.
func (m *Manager) Run(ctx context.Context) error {
	defer m.endPaths(func(pathKey) bool { return true })
	for {
		conns, connsChanged := m.conns.Get()
		peersChanged := m.cfg.Peers.Changed()
		want := map[pathKey]bool{}
		for _, p := range m.cfg.Peers.Peers() {
			st, _ := p.State()
			if !st.Announced {
				continue
			}
			for _, rid := range st.Info.Relays {
				rc := conns[rid]
				if rc == nil || rc.conn.Context().Err() != nil {
					continue
				}
				key := pathKey{rid, p.ID}
				want[key] = true
				m.mu.Lock()
				old := m.paths[key]
				if old != nil && old.rc == rc && !old.ended() {
					m.mu.Unlock()
					continue
				}
				np := newPath(rid, p.ID, rc, m.cfg.Secure)
				m.paths[key] = np
				m.mu.Unlock()
				if old != nil {
					_ = old.Close()
				}
				p.AddPath(np)
			}
		}
		m.endPaths(func(k pathKey) bool { return !want[k] })
		select {
		case <-connsChanged:
		case <-peersChanged:
		case <-ctx.Done():
			return nil
		}
	}
}

// endPaths ends and forgets the relay paths whose key drop selects.
func (m *Manager) endPaths(drop func(pathKey) bool) {
	m.mu.Lock()
	var ended []*Path
	for k, p := range m.paths {
		if drop(k) {
			ended = append(ended, p)
			delete(m.paths, k)
		}
	}
	m.mu.Unlock()
	for _, p := range ended {
		_ = p.Close()
	}
}

// pathFor returns the relay path to peer through the relay of rc: the one
// on the peer when there is one, else a path for this stream alone (the
// peer may be between two words of the control server).
func (m *Manager) pathFor(rid, peer identity.ID, rc *relayConn) *Path {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.paths[pathKey{rid, peer}]; p != nil && p.rc == rc {
		return p
	}
	return newPath(rid, peer, rc, m.cfg.Secure)
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
			st.Transport = string(rc.conn.Transport())
			st.RTTms = float64(rc.conn.RTT().Microseconds()) / 1000
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// maintain keeps a connection to one relay until ctx ends.
func (m *Manager) maintain(ctx context.Context, id identity.ID, r *relay) {
	loop := redial.Loop{
		Min:       retryMin,
		Max:       retryMax,
		Logger:    m.cfg.Logger.With("relay", id),
		Unreached: "cannot reach relay, retrying",
		Lost:      "relay connection lost, reconnecting",
		Failed: func(err error) slog.Level {
			m.mu.Lock()
			repeated := r.lastErr == err.Error()
			r.lastErr = err.Error()
			m.mu.Unlock()
			if errors.Is(err, ErrIdentityChanged) && !repeated {
				// Nothing the client can do fixes it: the operator must.
				return slog.LevelWarn
			}
			return slog.LevelDebug
		},
	}
	_ = loop.Run(ctx, func(ctx context.Context, connected func()) error { return m.connectOnce(ctx, id, r, connected) })
}

// connectOnce connects to the relay, presents the client's grant and
// serves the connection until it ends; it calls connected once the relay
// accepted the grant.
func (m *Manager) connectOnce(ctx context.Context, id identity.ID, r *relay, connected func()) error {
	m.mu.Lock()
	info := r.info
	m.mu.Unlock()
	g, err := m.grant.Wait(ctx, func(g *pb.SignedGrant) bool { return g != nil })
	if err != nil {
		return err
	}
	// Timed from here: waiting for a first grant is not setting up.
	start := time.Now()
	conn, err := m.dial(ctx, id, info)
	if errors.Is(err, identity.ErrPinMismatch) {
		return fmt.Errorf("%w: %w", ErrIdentityChanged, err)
	}
	if err != nil {
		return err
	}
	var watching sync.WaitGroup // the liveness watch, which ends with conn
	defer func() { _ = conn.CloseWithError(0, "client leaving"); watching.Wait() }()
	stream, reply, err := presentGrant(ctx, conn, g, m.cfg.QUIC.HandshakeIdleTimeout)
	if err != nil {
		return err
	}
	connected()
	if m.cfg.SetupTime != nil {
		m.cfg.SetupTime(time.Since(start))
	}
	m.cfg.Logger.Info("relay connected", "relay", id, "remote", logs.Addr(conn.RemoteAddr()), "transport", conn.Transport())
	// A relay that died without its close reaching us goes silent: redial
	// after the silence limit, not the idle timeout.
	rc := &relayConn{conn: conn, health: liveness.CloseWhenStale(conn, codeStale, &watching), observed: reply.GetSignedObserved()}
	m.addConn(id, rc)
	defer m.removeConn(id, rc)
	return m.serve(ctx, id, rc, stream, g)
}

// presentGrant sends the client's grant g on a new stream and reads the
// relay's answer; the stream stays open for the grants that follow.
func presentGrant(ctx context.Context, conn muxconn.Conn, g *pb.SignedGrant, timeout time.Duration) (muxconn.Stream, *pb.RelayReply, error) {
	stream, err := conn.OpenStream(ctx)
	if err != nil {
		return nil, nil, err
	}
	_ = stream.SetDeadline(time.Now().Add(timeout))
	if err := wire.Write(stream, g); err != nil {
		return nil, nil, err
	}
	var reply pb.RelayReply
	if err := wire.Read(stream, &reply, wire.MaxControlMessage); err != nil {
		return nil, nil, err
	}
	if err := wire.FromPB(reply.GetError()); err != nil {
		return nil, nil, fmt.Errorf("relay refused the grant: %w", err)
	}
	_ = stream.SetDeadline(time.Time{})
	return stream, &reply, nil
}

// addConn makes rc the connection to relay id.
func (m *Manager) addConn(id identity.ID, rc *relayConn) {
	m.conns.Update(func(old map[identity.ID]*relayConn) map[identity.ID]*relayConn {
		next := maps.Clone(old)
		if next == nil {
			next = map[identity.ID]*relayConn{}
		}
		next[id] = rc
		return next
	})
}

// removeConn forgets rc, unless a newer connection to relay id replaced it.
func (m *Manager) removeConn(id identity.ID, rc *relayConn) {
	m.conns.Update(func(old map[identity.ID]*relayConn) map[identity.ID]*relayConn {
		next := maps.Clone(old)
		if next[id] == rc {
			delete(next, id)
		}
		return next
	})
}

// serve sends the client's new grants to the relay on stream (the relay
// has sent) and takes the streams the relay opens, until ctx ends or the
// connection does.
func (m *Manager) serve(ctx context.Context, id identity.ID, rc *relayConn, stream muxconn.Stream, sent *pb.SignedGrant) error {
	ctx, cancel := context.WithCancelCause(ctx)
	// The goroutines below, and the streams accept serves, end when ctx
	// does or the connection closes: wait for them after both, so they
	// never outlive this connection (connectOnce's deferred CloseWithError
	// would run too late).
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { _ = rc.conn.CloseWithError(0, "client leaving") }()
	defer cancel(nil)
	wg.Go(func() { cancel(m.sendGrants(ctx, stream, sent)) })
	wg.Go(func() { cancel(m.accept(ctx, id, rc, &wg)) })
	select {
	case <-ctx.Done():
		return logs.Closed(context.Cause(ctx), "relay")
	case <-rc.conn.Context().Done():
		return logs.Closed(context.Cause(rc.conn.Context()), "relay")
	}
}

// dial connects to a relay: over QUIC unless the client is on TCP, and
// over TCP too when a QUIC handshake times out (UDP blocked on the way to
// this relay only).
func (m *Manager) dial(ctx context.Context, id identity.ID, info *pb.Relay) (muxconn.Conn, error) {
	tlsConf := m.cfg.Identity.PinnedClientConfig(info.GetCertificate(), wire.ALPNRelay)
	log := m.cfg.Logger.With("relay", id)
	if m.cfg.TCP == nil || !m.onTCP.Load() {
		addrs := resolve(info.GetHostports())
		if len(addrs) == 0 {
			return nil, fmt.Errorf("no address for hostports %v", info.GetHostports())
		}
		conn, err := quicdial.Any(ctx, m.cfg.Transport, addrs, tlsConf, m.cfg.QUIC, log)
		if err == nil {
			return muxconn.FromQUIC(conn), nil
		}
		var ne net.Error
		if m.cfg.TCP == nil || !errors.As(err, &ne) || !ne.Timeout() {
			return nil, err
		}
		log.Info("QUIC to the relay timed out: trying TCP", logs.Err(err))
	}
	var errs []error
	for _, hp := range info.GetHostports() {
		conn, err := m.cfg.TCP(hp).Dial(ctx, tlsConf)
		if err == nil {
			return conn, nil
		}
		if errors.Is(err, identity.ErrPinMismatch) {
			return nil, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", hp, err))
	}
	return nil, fmt.Errorf("relay over TCP: %w", logs.Join(errs...))
}

// sendGrants sends each new grant after the one the relay already has.
func (m *Manager) sendGrants(ctx context.Context, stream muxconn.Stream, sent *pb.SignedGrant) error {
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

// accept serves the streams the relay opens to us, each in wg (accept
// itself runs in wg, so adding to it here is safe).
func (m *Manager) accept(ctx context.Context, rid identity.ID, rc *relayConn, wg *sync.WaitGroup) error {
	for {
		s, err := rc.conn.AcceptStream(ctx)
		if err != nil {
			return err
		}
		wg.Go(func() { m.serveIncoming(rid, rc, s) })
	}
}

// serveIncoming reads who opened a stream through the relay and which
// endpoint and encryption it asks for in the clear, secures it and hands it
// on.
func (m *Manager) serveIncoming(rid identity.ID, rc *relayConn, s muxconn.Stream) {
	st := s
	_ = s.SetDeadline(time.Now().Add(tunnel.HeaderTimeout))
	var in pb.RelayIncoming
	if err := wire.Read(s, &in, wire.MaxStreamHeader); err != nil {
		st.Reset()
		return
	}
	from, err := identity.ParseID(in.GetPeer())
	if err != nil {
		st.Reset()
		return
	}
	p := m.cfg.Peers.Get(from)
	if p == nil {
		m.cfg.Logger.Debug("relayed stream from an unknown peer", "peer", from)
		st.Reset()
		return
	}
	// The peer's hello, its handshake and its request may all be slow to
	// come: the stream waits for its answer from here on. A stream over
	// the peer's quota gets no answer in words, which only the handshake
	// would allow.
	answered, ok := m.cfg.Admit(p)
	if !ok {
		st.Reset()
		return
	}
	var hello pb.RelayedHello
	if err := wire.Read(s, &hello, wire.MaxStreamHeader); err != nil {
		st.Reset()
		answered()
		return
	}
	_ = s.SetDeadline(time.Time{})
	secured, err := m.cfg.Secure.SecureIncoming(from, &hello, st)
	if err != nil {
		m.cfg.Logger.Warn("relayed connection refused", "peer", from, "endpoint", hello.GetEndpoint(), "err", err)
		st.Reset()
		answered()
		return
	}
	m.cfg.OnStream(p, m.pathFor(rid, from, rc), secured, hello.GetEndpoint(), answered)
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
