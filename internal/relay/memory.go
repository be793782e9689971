package relay

import (
	"context"
	"errors"

	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
)

// What one client can make the relay hold is what it sends that the relay
// has not forwarded yet: a relayed connection whose other end stops
// reading keeps its stream's receive window full at the relay, and the
// copy buffer that waits to be written. Both are bounded per client,
// whatever its transport (docs/operations.md, "When UDP is blocked"):
//
//   - Its streams' receive windows hold maxWindows in all. Over QUIC that
//     is the connection's flow-control window (tuning.MaxConnectionWindow).
//     yamux, over TCP and WebSocket, has none, and every stream starts
//     with muxconn.StreamWindow (256 KiB), so the relay counts the
//     windows (muxconn.Admit) and refuses a stream that finds no room
//     (LIMIT): such a client holds at most 256 streams at once (128 while
//     two of them run at full speed), whatever its quotas allow, and up
//     to 64 streams that arrived and were not taken yet may hold a window
//     past that (muxconn's serverAcceptBacklog). Before
//     it is admitted it holds two, and their windows do not grow. The
//     windows count bytes; yamux keeps each frame it receives apart, so
//     data sent one byte per frame costs it ~26 times its size: muxconn
//     also bounds the frames a client leaves unread (frames.go).
//   - Its connections' big copy buffers are maxBursts at once; other
//     directions copy through their small buffer (tunnel.BurstSharer).
//   - Every stream it may open costs state before the relay sees it, so
//     it may open the ones its quotas allow and no more (maxIncoming).
const (
	maxWindows = tuning.MaxConnectionWindow
	maxBursts  = 64
)

// streamSlack is the streams a client may open beyond its quotas: its
// grant stream, and streams refused with LIMIT whose refusal is on its
// way. Further streams are refused by the transport (QUIC keeps them
// waiting in the client; yamux resets them).
const streamSlack = 64

// maxIncoming is how many streams a client may have open towards the
// relay at once under quotas q. A grantless QUIC client that named stream
// 131 071 (the limit was tuning.MaxStreams) made the relay allocate 210
// MiB for the streams below it.
func maxIncoming(q Quotas) uint32 {
	q = q.withDefaults()
	// Quotas past tuning.MaxStreams allow no more than that: the sum must
	// not wrap around to a small number, or to 0 (the transports' default).
	return uint32(min(int64(q.Streams)+int64(q.Pending)+streamSlack, tuning.MaxStreams))
}

// clientQUIC is base for the QUIC connections of clients held to quotas q.
func clientQUIC(base *quic.Config, q Quotas) *quic.Config {
	c := base.Clone()
	c.MaxIncomingStreams = int64(maxIncoming(q))
	return c
}

// windowsFull refuses a stream of c, or towards it, when its windows
// have no room left.
func windowsFull(c *client) *wire.Error {
	return wire.Errorf(pb.ErrorCode_ERROR_CODE_LIMIT, "client %s has %d MiB of stream windows at the relay, the most it allows", c.id, maxWindows>>20)
}

// errWindowsFull is openTowards finding no room for another window.
var errWindowsFull = errors.New("stream windows full")

// openTowards opens a stream towards c, whose window there must fit c's
// budget. The check and the opening are one step per client, so streams
// from many sources cannot all pass the check before any is counted.
func openTowards(c *client) (muxconn.Stream, error) {
	c.opening.Lock()
	defer c.opening.Unlock()
	if !muxconn.HasWindowRoom(c.conn, muxconn.StreamWindow) {
		return nil, errWindowsFull
	}
	ctx, cancel := context.WithTimeout(context.Background(), tunnel.HeaderTimeout)
	defer cancel()
	return c.conn.OpenStream(ctx)
}
