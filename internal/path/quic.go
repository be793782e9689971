package path

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// StreamAbort is the application error code for streams abandoned before
// their end; peers treat it as a reset connection.
const StreamAbort quic.StreamErrorCode = 1

// QUIC is a Path made of a QUIC connection straight to the peer.
type QUIC struct {
	Conn *quic.Conn
	kind Kind
}

// NewQUIC wraps conn as a path of the given kind.
func NewQUIC(conn *quic.Conn, kind Kind) *QUIC { return &QUIC{Conn: conn, kind: kind} }

func (p *QUIC) Kind() Kind            { return p.kind }
func (p *QUIC) RemoteAddr() net.Addr  { return p.Conn.RemoteAddr() }
func (p *QUIC) RTT() time.Duration    { return p.Conn.ConnectionStats().SmoothedRTT }
func (p *QUIC) Done() <-chan struct{} { return p.Conn.Context().Done() }
func (p *QUIC) String() string        { return string(p.kind) + " " + p.RemoteAddr().String() }

// Close closes the connection with no error.
func (p *QUIC) Close() error { return p.Conn.CloseWithError(0, "closed") }

// Accept waits for the next stream the peer opens.
func (p *QUIC) Accept(ctx context.Context) (Stream, error) {
	s, err := p.Conn.AcceptStream(ctx)
	if err != nil {
		return nil, err
	}
	return WrapQUIC(s), nil
}

func (p *QUIC) OpenStream(ctx context.Context) (Stream, error) {
	s, err := p.Conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return WrapQUIC(s), nil
}

// WrapQUIC adapts a QUIC stream to Stream.
func WrapQUIC(s *quic.Stream) Stream { return &quicStream{s: s} }

type quicStream struct {
	s           *quic.Stream
	writeClosed atomic.Bool
}

func (q *quicStream) Read(b []byte) (int, error)    { return q.s.Read(b) }
func (q *quicStream) Write(b []byte) (int, error)   { return q.s.Write(b) }
func (q *quicStream) SetDeadline(t time.Time) error { return q.s.SetDeadline(t) }
func (q *quicStream) CloseWrite() error {
	q.writeClosed.Store(true)
	return q.s.Close()
}

func (q *quicStream) Close() error {
	q.s.CancelRead(StreamAbort)
	if q.writeClosed.Swap(true) {
		return nil
	}
	return q.s.Close()
}

// Reset cancels reading, and writing unless it already ended with a FIN:
// cancelling a finished write would throw away data not yet acknowledged.
func (q *quicStream) Reset() {
	q.s.CancelRead(StreamAbort)
	if !q.writeClosed.Swap(true) {
		q.s.CancelWrite(StreamAbort)
	}
}
