package muxconn

import (
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// StreamAbort is the application error code for streams abandoned before
// their end; peers treat it as a reset connection.
const StreamAbort quic.StreamErrorCode = 1

// FromQUIC views a QUIC connection as a Conn.
func FromQUIC(c *quic.Conn) Conn { return quicConn{c} }

// QUICOf returns the QUIC connection under c, or nil if another transport
// carries it.
func QUICOf(c Conn) *quic.Conn {
	if q, ok := c.(quicConn); ok {
		return q.c
	}
	return nil
}

type quicConn struct{ c *quic.Conn }

func (q quicConn) OpenStream(ctx context.Context) (Stream, error) {
	s, err := q.c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return WrapQUIC(s), nil
}

func (q quicConn) AcceptStream(ctx context.Context) (Stream, error) {
	s, err := q.c.AcceptStream(ctx)
	if err != nil {
		return nil, err
	}
	return WrapQUIC(s), nil
}

func (q quicConn) TLS() tls.ConnectionState { return q.c.ConnectionState().TLS }
func (q quicConn) RemoteAddr() net.Addr     { return q.c.RemoteAddr() }
func (q quicConn) LocalAddr() net.Addr      { return q.c.LocalAddr() }
func (q quicConn) Context() context.Context { return q.c.Context() }
func (q quicConn) RTT() time.Duration       { return q.c.ConnectionStats().SmoothedRTT }
func (q quicConn) Received() uint64         { return q.c.ConnectionStats().PacketsReceived }
func (q quicConn) Transport() Transport     { return QUIC }

// SendDatagram sends an unreliable datagram (liveness pokes with one).
func (q quicConn) SendDatagram(b []byte) error { return q.c.SendDatagram(b) }
func (q quicConn) CloseWithError(code quic.ApplicationErrorCode, reason string) error {
	return q.c.CloseWithError(code, reason)
}

// WrapQUIC adapts a QUIC stream to Stream.
func WrapQUIC(s *quic.Stream) Stream { return &quicStream{s: s} }

type quicStream struct {
	s           *quic.Stream
	writeClosed atomic.Bool
}

func (q *quicStream) Read(b []byte) (int, error)         { return q.s.Read(b) }
func (q *quicStream) Write(b []byte) (int, error)        { return q.s.Write(b) }
func (q *quicStream) SetDeadline(t time.Time) error      { return q.s.SetDeadline(t) }
func (q *quicStream) SetReadDeadline(t time.Time) error  { return q.s.SetReadDeadline(t) }
func (q *quicStream) SetWriteDeadline(t time.Time) error { return q.s.SetWriteDeadline(t) }
func (q *quicStream) CloseRead()                         { q.s.CancelRead(StreamAbort) }

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
