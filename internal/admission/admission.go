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

	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/wire"
	"google.golang.org/protobuf/proto"
)

// Linger is how long a refused peer has to read why before the server
// closes the connection; the peer normally closes it first.
const Linger = time.Second

// Request is the stream a peer opened to ask for admission, until the
// server answers. It has a deadline: a peer that is slow to ask, or to
// read the answer, is not waited for.
type Request struct {
	conn   muxconn.Conn
	stream muxconn.Stream
}

// Accept waits up to timeout for the stream a peer opens on conn to ask
// for admission; what names the request in the error when none comes. The
// stream keeps that deadline until Admit.
func Accept(ctx context.Context, conn muxconn.Conn, timeout time.Duration, what string) (*Request, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stream, err := conn.AcceptStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("waiting for %s: %w", what, err)
	}
	deadline, _ := ctx.Deadline()
	_ = stream.SetDeadline(deadline)
	return &Request{conn: conn, stream: stream}, nil
}

// Read reads the peer's request into msg, of at most limit bytes: it comes
// before the peer is admitted, so a small cap keeps a stranger from making
// the server hold much. A request over the cap stops the peer's write of
// the rest, so that it gets to read a refusal rather than block until the
// connection closes.
func (r *Request) Read(msg proto.Message, limit int) error {
	err := wire.Read(r.stream, msg, limit)
	if errors.Is(err, wire.ErrTooLarge) {
		r.stream.CloseRead()
	}
	return err
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
