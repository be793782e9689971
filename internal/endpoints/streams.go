package endpoints

import (
	"context"
	"errors"

	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// A peer's streams to our destinations wait, each in a goroutine, from the
// moment the peer opens one until it is answered: while its request (and,
// relayed, its hello and handshake) comes, while the destination takes it
// and while its service is dialed. Each wait is bounded in time, but a
// peer could open streams faster than they time out; the quota
// (Config.MaxPending) bounds how many of them one peer may have at once,
// on all its paths, so a peer that never sends its requests holds a fixed
// number of goroutines and cannot crowd out other peers.

// Incoming is a stream a source opened to one of our destinations.
type Incoming struct {
	*tunnel.Incoming
	Path netpath.Path
	Peer *peer.Peer
	// answered ends the stream's wait, one of the peer's pending streams
	// (see Admit); Accept and Refuse call it.
	answered func()
}

// Accept tells the source the connection is established: the stream no
// longer waits.
func (in *Incoming) Accept() error {
	defer in.answered()
	return in.Incoming.Accept()
}

// Refuse tells the source why the connection failed and ends the stream.
func (in *Incoming) Refuse(reason error) {
	defer in.answered()
	in.Incoming.Refuse(reason)
}

// Acceptor is a path on which the peer can open streams to us.
type Acceptor interface {
	netpath.Path
	Accept(ctx context.Context) (netpath.Stream, error)
}

// ServePath serves the streams p opens on the direct path pp until the
// path ends or ctx does, on goroutines that Wait waits for. Relayed
// streams arrive through the relay manager; both end in ServeStream.
func (t *Table) ServePath(ctx context.Context, p *peer.Peer, pp Acceptor) {
	t.wg.Go(func() {
		for {
			s, err := pp.Accept(ctx)
			if err != nil {
				return
			}
			// Counted here, in the order the peer opened its streams, so
			// the quota holds whatever order their goroutines run in; a
			// stream over it is refused in this loop, without a goroutine
			// of its own.
			answered, ok := t.Admit(p)
			if !ok {
				(&tunnel.Incoming{Stream: s}).RefuseNow(t.pendingRefusal())
				continue
			}
			// Added from a goroutine in t.wg, so before Wait returns.
			t.wg.Go(func() { t.ServeStream(p, pp, s, "", answered) })
		}
	})
}

// ServeStream answers one stream a peer opened, on any path: it must name a
// destination of ours for which the control server lists the peer as a
// source (and, on a relayed stream, the endpoint its clear hello named).
// answered ends the stream's wait (see Admit), once it is answered.
func (t *Table) ServeStream(p *peer.Peer, pp netpath.Path, s netpath.Stream, named string, answered func()) {
	req, err := tunnel.ReadRequest(s)
	if err != nil {
		defer answered()
		t.cfg.Logger.Debug("bad stream request", "peer", p.ID, "err", err)
		var werr *wire.Error
		if errors.As(err, &werr) {
			(&tunnel.Incoming{Stream: s}).Refuse(werr)
			return
		}
		s.Reset()
		return
	}
	in := &Incoming{Incoming: req, Path: pp, Peer: p, answered: answered}
	if named != "" && in.Endpoint != named {
		in.Refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "request for %q inside a stream opened for %q", in.Endpoint, named))
		return
	}
	st, _ := p.State()
	e, ok := st.Endpoint(in.Endpoint, peer.Source)
	if !ok {
		in.Refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_NOT_AUTHORIZED, "peer is not a source of %q", in.Endpoint))
		return
	}
	d := t.Local(in.Endpoint, peer.Destination)
	if d == nil {
		in.Refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_DESTINATION_NOT_FOUND, "no destination %q here", in.Endpoint))
		return
	}
	if !d.Route.Allows(pp.Kind()) || !e.Route.Allows(pp.Kind()) {
		in.Refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_NOT_AUTHORIZED, "route does not allow %s paths", pp.Kind()))
		return
	}
	d.Deliver(in)
}

// Admit counts a stream peer p opened as waiting for its answer, or
// refuses it when p has as many waiting as the quota allows, counting the
// refusal. answered ends the wait; every way a stream leaves it calls it.
func (t *Table) Admit(p *peer.Peer) (answered func(), ok bool) {
	answered, ok = p.Pending.Take(t.cfg.MaxPending)
	if !ok {
		t.cfg.Metrics.Refused(metrics.ReasonPending)
		t.cfg.Logger.Debug("stream refused: peer over its pending-stream quota", "peer", p.ID, "quota", t.cfg.MaxPending)
	}
	return answered, ok
}

// pendingRefusal is the reason a source reads when its stream is refused
// for the quota: its application sees a refused connection at once.
func (t *Table) pendingRefusal() *wire.Error {
	return wire.Errorf(pb.ErrorCode_ERROR_CODE_LIMIT, "%d connections from you already wait to be answered here (the destination's max-pending-streams)", t.cfg.MaxPending)
}

// PendingStreams is how many streams of all peers wait now.
func (t *Table) PendingStreams() int {
	n := 0
	for _, p := range t.cfg.Registry.Peers() {
		n += p.Pending.Held()
	}
	return n
}
