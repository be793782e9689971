package connet

import (
	"context"
	"errors"

	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// acceptor is a path on which the peer can open streams to us.
type acceptor interface {
	netpath.Path
	Accept(ctx context.Context) (netpath.Stream, error)
}

// servePath serves the streams p opens on the direct path pp until the
// path ends. Relayed streams arrive through the relay manager; both end in
// serveStream.
func (c *Client) servePath(p *peer.Peer, pp acceptor) {
	c.wg.Go(func() {
		for {
			s, err := pp.Accept(c.ctx)
			if err != nil {
				return
			}
			// Counted here, in the order the peer opened its streams, so
			// the quota holds whatever order their goroutines run in; a
			// stream over it is refused in this loop, without a goroutine
			// of its own.
			answered, ok := c.admitStream(p)
			if !ok {
				(&tunnel.Incoming{Stream: s}).RefuseNow(c.pendingRefusal())
				continue
			}
			// Added from a goroutine in c.wg, so before Close waits.
			c.wg.Go(func() { c.serveStream(p, pp, s, "", answered) })
		}
	})
}

// serveStream answers one stream a peer opened, on any path: it must name a
// destination of ours for which the control server lists the peer as a
// source (and, on a relayed stream, the endpoint its clear hello named).
// answered ends the stream's wait (see admitStream), once it is answered.
func (c *Client) serveStream(p *peer.Peer, pp netpath.Path, s netpath.Stream, named string, answered func()) {
	req, err := tunnel.ReadRequest(s)
	if err != nil {
		defer answered()
		c.cfg.logger.Debug("bad stream request", "peer", p.ID, "err", err)
		var werr *wire.Error
		if errors.As(err, &werr) {
			(&tunnel.Incoming{Stream: s}).Refuse(werr)
			return
		}
		s.Reset()
		return
	}
	in := &incoming{Incoming: req, path: pp, peer: p, answered: answered}
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
	c.mu.Lock()
	d := c.destinations[in.Endpoint]
	c.mu.Unlock()
	if d == nil {
		in.Refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_DESTINATION_NOT_FOUND, "no destination %q here", in.Endpoint))
		return
	}
	if !d.cfg.Route.Allows(pp.Kind()) || !e.Route.Allows(pp.Kind()) {
		in.Refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_NOT_AUTHORIZED, "route does not allow %s paths", pp.Kind()))
		return
	}
	d.deliver(in)
}
