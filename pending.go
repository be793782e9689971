package connet

import (
	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// A peer's streams to our destinations wait, each in a goroutine, from the
// moment the peer opens one until it is answered: while its request (and,
// relayed, its hello and handshake) comes, while the destination takes it
// and while its service is dialed. Each wait is bounded in time, but a
// peer could open streams faster than they time out; the quota
// (ClientMaxPendingStreams) bounds how many of them one peer may have at
// once, on all its paths, so a peer that never sends its requests holds a
// fixed number of goroutines and cannot crowd out other peers.

// admitStream counts a stream peer p opened as waiting for its answer, or
// refuses it when p has as many waiting as the quota allows, counting the
// refusal. answered ends the wait; every way a stream leaves it calls it.
func (c *Client) admitStream(p *peer.Peer) (answered func(), ok bool) {
	answered, ok = p.Pending.Take(c.cfg.maxPendingStreams)
	if !ok {
		c.metrics.Refused(metrics.ReasonPending)
		c.cfg.logger.Debug("stream refused: peer over its pending-stream quota", "peer", p.ID, "quota", c.cfg.maxPendingStreams)
	}
	return answered, ok
}

// pendingRefusal is the reason a source reads when its stream is refused
// for the quota: its application sees a refused connection at once.
func (c *Client) pendingRefusal() *wire.Error {
	return wire.Errorf(pb.ErrorCode_ERROR_CODE_LIMIT, "%d connections from you already wait to be answered here (the destination's max-pending-streams)", c.cfg.maxPendingStreams)
}

// pendingStreams is how many streams of all peers wait now.
func (c *Client) pendingStreams() int {
	n := 0
	for _, p := range c.registry.Peers() {
		n += p.Pending.Held()
	}
	return n
}

// Accept tells the source the connection is established: the stream no
// longer waits.
func (in *incoming) Accept() error {
	defer in.answered()
	return in.Incoming.Accept()
}

// Refuse tells the source why the connection failed and ends the stream.
func (in *incoming) Refuse(reason error) {
	defer in.answered()
	in.Incoming.Refuse(reason)
}
