package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pconnet/connet/internal/admission"
	"github.com/p2pconnet/connet/internal/grant"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/liveness"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/notify"
	"github.com/p2pconnet/connet/internal/observation"
	"github.com/p2pconnet/connet/internal/quota"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
)

// Connection close codes sent to clients.
const (
	codeOK quic.ApplicationErrorCode = iota
	codeRefused
	codeReplaced
	codeStale
)

// client is one admitted client.
type client struct {
	id     identity.ID
	conn   muxconn.Conn
	grant  atomic.Pointer[heldGrant]
	quotas Quotas
	// streams counts the client's relayed connections, pending its streams
	// still waiting for their header or pairing (see Quotas).
	streams atomic.Int64
	pending quota.Pending

	// grants is bumped whenever the client presents a new grant. Streams
	// waiting to pair with this client wait on it: only a grant of one of
	// the two clients can change whether they pair.
	grants notify.Value[uint64]
	// bursts counts the big copy buffers the client's relayed
	// connections hold (see clientEnd).
	bursts atomic.Int64
	// opening makes the check of the client's window room and the
	// opening of a stream towards it one step (see openTowards).
	opening sync.Mutex
}

// serve admits a client on its grant, then serves the streams it opens.
func (s *Server) serve(ctx context.Context, conn muxconn.Conn, in Ingress) {
	log := s.cfg.Logger.With("remote", logs.Addr(conn.RemoteAddr()))
	c, req, err := s.admit(ctx, conn)
	if err != nil {
		if errors.Is(err, errGrant) {
			s.cfg.Metrics.Refused(metrics.ReasonGrant)
		}
		log.Info("relay refused client", "err", err)
		_ = conn.CloseWithError(codeRefused, err.Error())
		return
	}
	c.quotas = in.Quotas.withDefaults()
	// Only now may the client open the streams its quotas allow, with
	// windows that grow (see memory.go).
	muxconn.Admit(conn, maxWindows)
	log = log.With("client", c.id)
	log.Info("relay client connected")
	// watchers are the goroutines serving this client: its grants, its
	// streams, its moves, its liveness. They end with conn, closed before
	// they are waited for.
	var watchers sync.WaitGroup
	defer watchers.Wait()
	defer func() { _ = conn.CloseWithError(codeOK, "") }()
	liveness.CloseWhenStale(conn, codeStale, &watchers)
	watchers.Go(func() { watchMoves(ctx, conn, in.AllowAddr) })
	s.register(c)
	defer s.unregister(ctx, c, log)
	// Acknowledge only now that the client is registered, so a peer that
	// hears of it can reach it at once.
	stream, err := req.Admit(s.admittedReply(c, log))
	if err != nil {
		return
	}
	watchers.Go(func() { s.watchGrants(stream, c, log) })
	s.acceptStreams(ctx, c, &watchers)
}

// watchMoves holds a client that moves (QUIC migration) to the ingress's
// address rules at its new address.
func watchMoves(ctx context.Context, conn muxconn.Conn, allowAddr func(netip.Addr) bool) {
	ingress.WatchMoves(ctx, conn, codeRefused, func(a netip.Addr) error {
		if allowAddr != nil && !allowAddr(a) {
			return fmt.Errorf("address %s not allowed", a)
		}
		return nil
	}, nil)
}

// register makes c the client of its id, ending the connection it
// replaces.
func (s *Server) register(c *client) {
	s.mu.Lock()
	old := s.clients[c.id]
	s.clients[c.id] = c
	s.mu.Unlock()
	if old != nil {
		_ = old.conn.CloseWithError(codeReplaced, "replaced by a new connection")
	}
}

// unregister forgets c, unless a newer connection replaced it, and logs
// why it left.
func (s *Server) unregister(ctx context.Context, c *client, log *slog.Logger) {
	s.mu.Lock()
	if s.clients[c.id] == c {
		delete(s.clients, c.id)
	}
	s.mu.Unlock()
	// A connection still open was ended from this side: the relay is
	// stopping, and ctx says why.
	reason := context.Cause(c.conn.Context())
	if reason == nil {
		reason = context.Cause(ctx)
	}
	log.Info("relay client disconnected", logs.ErrKey("reason", logs.Closed(reason, "client")))
}

// admittedReply is the answer that admits c. Over QUIC, it carries where
// we see the client, signed: the control server compares it with where it
// sees the client to tell how the client's NAT maps (see package
// observation). Over TCP there is no UDP mapping to speak of.
func (s *Server) admittedReply(c *client, log *slog.Logger) *pb.RelayReply {
	reply := &pb.RelayReply{}
	if ua, ok := c.conn.RemoteAddr().(*net.UDPAddr); ok && c.conn.Transport() == muxconn.QUIC {
		so, err := observation.Sign(s.cfg.Identity, c.id, ua.AddrPort())
		if err != nil {
			log.Warn("cannot sign where the client is seen", logs.Err(err))
		}
		reply.SignedObserved = so
	}
	return reply
}

// watchGrants takes the fresh grants c sends on stream, and ends its
// connection at a bad one.
func (s *Server) watchGrants(stream muxconn.Stream, c *client, log *slog.Logger) {
	if err := s.readGrants(stream, c); err != nil && c.conn.Context().Err() == nil {
		if errors.Is(err, errGrant) {
			s.cfg.Metrics.Refused(metrics.ReasonGrant)
		}
		log.Warn("relay client sent a bad grant", "err", err)
		_ = c.conn.CloseWithError(codeRefused, err.Error())
	}
}

// acceptStreams serves the streams c opens, each in watchers, until its
// connection ends. A stream over c's quotas is refused.
func (s *Server) acceptStreams(ctx context.Context, c *client, watchers *sync.WaitGroup) {
	for {
		stream, err := c.conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		// Its window is counted already.
		if !muxconn.HasWindowRoom(c.conn, 0) {
			s.cfg.Metrics.Refused(metrics.ReasonStreams)
			watchers.Go(func() { refuseStream(stream, windowsFull(c)) })
			continue
		}
		// Counted here, in the order the client opened its streams, so
		// the quota holds whatever order their goroutines run in.
		paired, ok := c.pending.Take(c.quotas.Pending)
		if !ok {
			s.cfg.Metrics.Refused(metrics.ReasonPending)
			watchers.Go(func() {
				refuseStream(stream, wire.Errorf(pb.ErrorCode_ERROR_CODE_LIMIT, "more than %d connections waiting to be relayed", c.quotas.Pending))
			})
			continue
		}
		watchers.Go(func() { s.relay(c, stream, paired) })
	}
}

// admit reads and checks the client's first grant; the caller registers the
// client and then admits it on the returned request.
func (s *Server) admit(ctx context.Context, conn muxconn.Conn) (*client, *admission.Request, error) {
	// The first grant is read under the cap for grants, not the far
	// larger one for control messages.
	var sg pb.SignedGrant
	req, err := admission.Receive(ctx, conn, s.cfg.QUIC.HandshakeIdleTimeout, "grant", &sg, wire.MaxGrant)
	if err != nil {
		return nil, nil, err
	}
	c := &client{id: req.Peer, conn: conn}
	if err := s.checkGrant(c, &sg); err != nil {
		req.Refuse(&pb.RelayReply{Error: wire.ToPB(wire.Errorf(pb.ErrorCode_ERROR_CODE_NOT_AUTHORIZED, "%v", err))})
		return nil, nil, fmt.Errorf("%w: %w", errGrant, err)
	}
	return c, req, nil
}

// errGrant marks a grant the relay refused (the metrics' reason).
var errGrant = errors.New("grant refused")

// checkGrant verifies sg for c and makes it c's current grant.
func (s *Server) checkGrant(c *client, sg *pb.SignedGrant) error {
	g, err := grant.Verify(s.cfg.GrantKey(), sg, time.Now())
	if err != nil {
		return err
	}
	if g.Client != c.id {
		return fmt.Errorf("%w: grant of %s presented by %s", grant.ErrInvalid, g.Client, c.id)
	}
	c.grant.Store(newHeldGrant(g))
	c.grants.Update(func(n uint64) uint64 { return n + 1 })
	return nil
}

// readGrants takes the fresh grants a client sends as its endpoints change.
func (s *Server) readGrants(stream muxconn.Stream, c *client) error {
	for {
		var sg pb.SignedGrant
		if err := wire.Read(stream, &sg, wire.MaxGrant); err != nil {
			if c.conn.Context().Err() != nil || connectionEnded(err) {
				return nil
			}
			return err
		}
		if err := s.checkGrant(c, &sg); err != nil {
			return fmt.Errorf("%w: %w", errGrant, err)
		}
	}
}

// connectionEnded tells whether a read failed because the connection
// ended (closed by either side, idle, reset), which can be seen on a stream
// just before the connection's context is cancelled, rather than because
// of what the client sent.
func connectionEnded(err error) bool {
	var (
		app   *quic.ApplicationError
		idle  *quic.IdleTimeoutError
		reset *quic.StatelessResetError
	)
	return errors.As(err, &app) || errors.As(err, &idle) || errors.As(err, &reset)
}

// refuseStream tells a client why its stream is refused and ends it.
func refuseStream(stream muxconn.Stream, reason *wire.Error) {
	_ = stream.SetDeadline(time.Now().Add(tunnel.HeaderTimeout))
	_ = wire.Write(stream, &pb.RelayReply{Error: wire.ToPB(reason)})
	_ = stream.CloseWrite()
	stream.Reset()
}

// relay handles one stream a client opened: a connection to another
// client. The stream counts as one of src's pending ones until it is
// paired or refused: paired ends that.
func (s *Server) relay(src *client, stream muxconn.Stream, paired func()) {
	_ = stream.SetDeadline(time.Now().Add(tunnel.HeaderTimeout))
	defer paired()
	var req pb.RelayConnect
	if err := wire.Read(stream, &req, wire.MaxStreamHeader); err != nil {
		stream.Reset()
		return
	}
	dst, refusal := s.pairedPeer(src, &req, paired)
	if refusal != nil {
		refuseStream(stream, refusal)
		return
	}
	out, refusal := s.connectTo(src, dst)
	if refusal != nil {
		refuseStream(stream, refusal)
		return
	}
	if err := wire.Write(stream, &pb.RelayReply{}); err != nil {
		out.Reset()
		stream.Reset()
		return
	}
	_ = stream.SetDeadline(time.Time{})
	src.streams.Add(1)
	dst.streams.Add(1)
	defer src.streams.Add(-1)
	defer dst.streams.Add(-1)
	s.cfg.Metrics.StreamOpened()
	s.cfg.Metrics.StreamClosed(tunnel.Splice(clientEnd{stream, src, s.cfg.Tap}, clientEnd{out, dst, s.cfg.Tap}))
}

// pairedPeer finds the client src asks for, and checks that the two pair
// (paired is called then) and that both have room for another relayed
// connection. A refusal is counted by its reason.
func (s *Server) pairedPeer(src *client, req *pb.RelayConnect, paired func()) (*client, *wire.Error) {
	dstID, err := identity.ParseID(req.GetPeer())
	if err != nil {
		s.cfg.Metrics.Refused(metrics.ReasonRequest)
		return nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "peer: %v", err)
	}
	s.mu.Lock()
	dst := s.clients[dstID]
	s.mu.Unlock()
	if dst == nil {
		s.cfg.Metrics.Refused(metrics.ReasonNoPeer)
		return nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_DESTINATION_NOT_FOUND, "peer %s is not at this relay", dstID)
	}
	if err := s.waitPaired(src, dst, src.conn.Context().Done()); err != nil {
		s.cfg.Metrics.Refused(metrics.ReasonNotPaired)
		return nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_NOT_AUTHORIZED, "%v", err)
	}
	paired()
	for _, c := range []*client{src, dst} {
		if c.streams.Load() >= int64(c.quotas.Streams) {
			s.cfg.Metrics.Refused(metrics.ReasonStreams)
			return nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_LIMIT, "client %s has %d relayed connections, the most this relay allows", c.id, c.quotas.Streams)
		}
	}
	return dst, nil
}

// connectTo opens the stream towards dst for a connection from src, and
// tells dst whom it comes from.
func (s *Server) connectTo(src, dst *client) (muxconn.Stream, *wire.Error) {
	out, err := openTowards(dst)
	if errors.Is(err, errWindowsFull) {
		s.cfg.Metrics.Refused(metrics.ReasonStreams)
		return nil, windowsFull(dst)
	}
	if err != nil {
		return nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_DESTINATION_NOT_FOUND, "peer %s: %v", dst.id, err)
	}
	if err := wire.Write(out, &pb.RelayIncoming{Peer: src.id[:]}); err != nil {
		out.Reset()
		return nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_DESTINATION_NOT_FOUND, "peer %s: %v", dst.id, err)
	}
	return out, nil
}

// clientEnd is a relayed connection's stream at one of its clients. What
// the relay reads from it goes through the client's share of big copy
// buffers (see memory.go), and is shown to the tap, if any.
type clientEnd struct {
	netpath.Stream
	c   *client
	tap func([]byte)
}

func (e clientEnd) Read(b []byte) (int, error) {
	n, err := e.Stream.Read(b)
	if n > 0 && e.tap != nil {
		e.tap(b[:n])
	}
	return n, err
}

func (e clientEnd) TakeBurst() bool {
	if e.c.bursts.Add(1) > maxBursts {
		e.c.bursts.Add(-1)
		return false
	}
	return true
}

func (e clientEnd) PutBurst() { e.c.bursts.Add(-1) }

// pairWait is how long a connection between two clients whose grants do
// not pair waits for a fresher grant. A client that just added an endpoint
// sends its new grant on another stream, which may arrive a moment after
// the first connection for that endpoint.
const pairWait = time.Second

// waitPaired checks that src and dst pair, waiting up to pairWait for new
// grants of either if they do not yet, or until gone is closed (the
// source left).
func (s *Server) waitPaired(src, dst *client, gone <-chan struct{}) error {
	timer := time.NewTimer(pairWait)
	defer timer.Stop()
	for {
		_, srcChanged := src.grants.Get()
		_, dstChanged := dst.grants.Get()
		err := paired(src, dst, time.Now())
		if s.pairChecked != nil {
			s.pairChecked(src.id, dst.id, err)
		}
		if err == nil {
			return nil
		}
		select {
		case <-srcChanged:
		case <-dstChanged:
		case <-timer.C:
			return err
		case <-gone:
			return err
		}
	}
}

// errNotPaired reports two clients whose grants share no endpoint they may
// relay.
var errNotPaired = errors.New("no relayable endpoint pairs these clients")

// paired checks that src's grant has a source endpoint matching a
// destination endpoint of dst's grant, both allowing relayed routes.
func paired(src, dst *client, now time.Time) error {
	sg, dg := src.grant.Load(), dst.grant.Load()
	if sg == nil || dg == nil || !now.Before(sg.Expires) || !now.Before(dg.Expires) {
		return fmt.Errorf("%w: grant missing or expired", grant.ErrExpired)
	}
	if ok, _ := sg.relayable.pairsWith(dg.relayable); ok {
		return nil
	}
	return errNotPaired
}
