// Package admission runs a server's side of the first exchange on a new
// connection: the peer opens a stream and sends its request (a client's
// hello, a relay's hello, a client's grant at a relay); the server answers
// it once, admitting the peer or refusing it with the reason. The control
// server and the relay admit this way.
package admission

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/wire"
	"google.golang.org/protobuf/proto"
)

// Linger is how long a refused peer has to read why before the server
// closes the connection; the peer normally closes it first.
const Linger = time.Second

// Request is a peer's request for admission, on the stream it opened,
// until the server answers. The stream has a deadline: a peer that is slow
// to ask, or to read the answer, is not waited for.
type Request struct {
	// Peer is who asks: the id of its certificate.
	Peer   identity.ID
	conn   muxconn.Conn
	stream muxconn.Stream
}

// Receive waits up to timeout for the stream a peer opens on conn to ask
// for admission, and reads its request into msg; what names the request
// in the error when none comes. The request comes before the peer is
// admitted, so it is read under a small cap, limit bytes: a stranger
// cannot make the server hold much. A request that cannot be read is an
// error, returned with the Request all the same, so that one over the cap
// (wire.ErrTooLarge) can be refused; the peer's write of the rest is
// stopped, so that it gets to read why rather than block until the
// connection closes. The stream keeps its deadline until Admit.
func Receive(ctx context.Context, conn muxconn.Conn, timeout time.Duration, what string, msg proto.Message, limit int) (*Request, error) {
	id, err := identity.PeerID(conn.TLS())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stream, err := conn.AcceptStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("waiting for %s: %w", what, err)
	}
	deadline, _ := ctx.Deadline()
	_ = stream.SetDeadline(deadline)
	r := &Request{Peer: id, conn: conn, stream: stream}
	err = wire.Read(stream, msg, limit)
	if errors.Is(err, wire.ErrTooLarge) {
		stream.CloseRead()
	}
	return r, err
}

// Refuse sends reply, which says why the peer is refused, and gives the
// peer Linger to read it before the caller closes the connection.
func (r *Request) Refuse(reply proto.Message) {
	_ = wire.Write(r.stream, reply)
	_ = r.stream.CloseWrite()
	t := time.NewTimer(Linger)
	defer t.Stop()
	select {
	case <-r.conn.Context().Done():
	case <-t.C:
	}
}

// Admit sends reply, which admits the peer, and returns the stream for
// what follows, without its deadline.
func (r *Request) Admit(reply proto.Message) (muxconn.Stream, error) {
	if err := wire.Write(r.stream, reply); err != nil {
		return nil, err
	}
	_ = r.stream.SetDeadline(time.Time{})
	return r.stream, nil
}
