package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// HeaderTimeout bounds how long a peer may take to send or answer a stream
// header, so a stuck peer cannot pin a goroutine.
const HeaderTimeout = 10 * time.Second

// Request is what a source asks of a destination.
type Request struct {
	Endpoint string
	// Origin is the address of the connection the source accepted, if any.
	Origin netip.AddrPort
}

// Open opens a stream on p, asks for endpoint, and waits for the
// destination's answer. On success the stream carries the connection.
// early, when not nil, is the start of the connection: what its client
// sends while the answer is awaited travels behind the request (see
// Early).
func Open(ctx context.Context, p netpath.Path, req Request, early *Early) (netpath.Stream, error) {
	s, err := p.OpenStream(ctx, req.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	if err := Ask(ctx, s, req, early); err != nil {
		return nil, err
	}
	return s, nil
}

// Ask sends req on a fresh stream (and early's bytes, see Open) and waits
// for the destination's answer; on failure the stream is reset.
func Ask(ctx context.Context, s netpath.Stream, req Request, early *Early) error {
	deadline := time.Now().Add(HeaderTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stop := context.AfterFunc(ctx, func() { _ = s.SetDeadline(time.Now()) })
	defer stop()
	_ = s.SetDeadline(deadline)

	msg := &pb.StreamRequest{Endpoint: req.Endpoint}
	if req.Origin.IsValid() {
		msg.Origin = wire.FromAddrPort(req.Origin)
	}
	if err := sendRequest(s, msg, early); err != nil {
		s.Reset()
		return err
	}
	stopEarly := early.start(s)
	var reply pb.StreamReply
	err := wire.Read(s, &reply, wire.MaxStreamHeader)
	stopEarly()
	if err == nil && early != nil && early.err != nil {
		s.Reset()
		return fmt.Errorf("%w: %w", ErrClientFailed, early.err)
	}
	if err != nil {
		s.Reset()
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return err
	}
	if err := wire.FromPB(reply.GetError()); err != nil {
		s.Reset()
		return err
	}
	if !stop() && ctx.Err() != nil {
		s.Reset()
		return context.Cause(ctx)
	}
	_ = s.SetDeadline(time.Time{})
	return nil
}

// sendRequest writes the request's frame and, behind it in the same write
// (so in one packet when they fit), what the client of early has sent by
// now.
func sendRequest(s netpath.Stream, msg *pb.StreamRequest, early *Early) error {
	bp := takeBig()
	defer putBig(bp)
	frame, err := wire.Append((*bp)[:0], msg)
	if err != nil {
		return err
	}
	frame = early.takeQueued(frame)
	if _, err := s.Write(frame); err != nil {
		return fmt.Errorf("wire: write %T: %w", msg, err)
	}
	return nil
}

// Incoming is a stream a source opened, waiting for an answer.
type Incoming struct {
	Request
	Stream netpath.Stream
}

// ReadRequest reads the header of a stream a peer opened.
func ReadRequest(s netpath.Stream) (*Incoming, error) {
	_ = s.SetDeadline(time.Now().Add(HeaderTimeout))
	var msg pb.StreamRequest
	if err := wire.Read(s, &msg, wire.MaxStreamHeader); err != nil {
		return nil, err
	}
	_ = s.SetDeadline(time.Time{})
	in := &Incoming{Request: Request{Endpoint: msg.GetEndpoint()}, Stream: s}
	if msg.Origin != nil {
		origin, err := wire.ToAddrPort(msg.Origin)
		if err != nil {
			return nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "origin: %v", err)
		}
		in.Origin = origin
	}
	if in.Endpoint == "" {
		return nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "no endpoint named")
	}
	return in, nil
}

// Accept tells the source the connection is established.
func (in *Incoming) Accept() error {
	return wire.Write(in.Stream, &pb.StreamReply{})
}

// Refuse tells the source why the connection failed and ends the stream.
func (in *Incoming) Refuse(reason error) {
	if in.writeRefusal(reason) == nil {
		// Let the reply drain before the read side is cancelled: the
		// source resets the stream once it has read it. What it sent
		// behind its request (see Early) is read and dropped meanwhile;
		// it is bounded by EarlyMax, and the deadline bounds the wait.
		var buf [512]byte
		for {
			if _, err := in.Stream.Read(buf[:]); err != nil {
				break
			}
		}
	}
	in.Stream.Reset()
}

// RefuseNow tells the source why the connection failed and ends the stream
// at once, reading nothing: for a stream refused before its request is
// read, whose source may never send one, so that refusing it holds
// nothing for long. The reply is small enough not to wait for flow
// control. On a QUIC stream, which RefuseNow is for, the reset that
// follows the end of writing only stops reading, and the reply is still
// delivered; a yamux stream's reset would throw it away.
func (in *Incoming) RefuseNow(reason error) {
	_ = in.writeRefusal(reason)
	in.Stream.Reset()
}

// writeRefusal writes the reply that refuses the connection, and the end
// of the stream behind it.
func (in *Incoming) writeRefusal(reason error) error {
	_ = in.Stream.SetDeadline(time.Now().Add(HeaderTimeout))
	if err := wire.Write(in.Stream, &pb.StreamReply{Error: wire.ToPB(reason)}); err != nil {
		return err
	}
	_ = in.Stream.CloseWrite()
	return nil
}

// IsRefusal tells whether err is an answer from the destination (as opposed
// to a failure of the path).
func IsRefusal(err error) bool {
	var e *wire.Error
	return errors.As(err, &e)
}
