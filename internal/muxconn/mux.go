package muxconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-yamux/v5"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/quic-go/quic-go"
)

// The stream multiplexer over TCP is yamux (libp2p's, which has half-close
// and reset like QUIC streams). TLS 1.3 under it authenticates both ends
// exactly as the QUIC handshake does, with the same tls.Config.

// muxConfig is yamux's configuration for connet: keepalives as often as
// QUIC's, so liveness sees the peer alive at the same pace; windows as
// large as QUIC's; no logging of its own.
func muxConfig(maxIncoming uint32) *yamux.Config {
	c := yamux.DefaultConfig()
	c.KeepAliveInterval = tuning.KeepAlive
	c.MeasureRTTInterval = tuning.KeepAlive
	c.MaxStreamWindowSize = tuning.MaxStreamWindow
	c.LogOutput = io.Discard
	if maxIncoming > 0 {
		c.MaxIncomingStreams = maxIncoming
	}
	return c
}

// Server runs the server side of TLS over raw, then of the multiplexer.
// maxIncoming bounds the streams the client may have open at once (0: the
// multiplexer's default). raw is closed if it fails.
func Server(ctx context.Context, raw net.Conn, tlsConf *tls.Config, t Transport, maxIncoming uint32) (Conn, error) {
	tc := tls.Server(raw, tlsConf)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return serverMux(tc, tc.ConnectionState(), t, maxIncoming, nil)
}

// serverAcceptBacklog is how many of a client's new streams a server
// session keeps before the server takes them; yamux resets the streams
// beyond it. Each holds a window (StreamWindow) that the server's own
// checks (HasWindowRoom) have not seen yet, so this bounds how far a
// client's windows can go past their budget: 64 streams, 16 MiB, where
// yamux's default of 256 allowed 64 MiB. A server takes streams as they
// come, each on its own goroutine, so 64 still covers a burst.
const serverAcceptBacklog = 64

// serverMux runs the server side of the multiplexer over c, whose TLS
// handshake (state st) is done; c is closed if it fails. The client's
// stream windows are counted from the start, held to a handshake's needs
// until the server admits it (see Admit).
//
// authenticated, if not nil, is called once when the server knows who the
// client is (see Authenticated).
func serverMux(c net.Conn, st tls.ConnectionState, t Transport, maxIncoming uint32, authenticated func()) (Conn, error) {
	cc := &countingConn{Conn: c, frames: newFrameMeter()}
	windows := &windowBudget{}
	cfg := muxConfig(maxIncoming)
	cfg.AcceptBacklog = serverAcceptBacklog
	sess, err := yamux.Server(cc, cfg, windows.span)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	m := newMuxConn(sess, st, cc, t, windows)
	if authenticated != nil {
		m.authenticated = sync.OnceFunc(authenticated)
	}
	return m, nil
}

// Client runs the client side of TLS over raw, then of the multiplexer.
// raw is closed if it fails.
func Client(ctx context.Context, raw net.Conn, tlsConf *tls.Config, t Transport) (Conn, error) {
	tc := tls.Client(raw, tlsConf)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return clientMux(tc, tc.ConnectionState(), t)
}

// clientMux runs the client side of the multiplexer over c, whose TLS
// handshake (state st) is done; c is closed if it fails.
func clientMux(c net.Conn, st tls.ConnectionState, t Transport) (Conn, error) {
	cc := &countingConn{Conn: c}
	sess, err := yamux.Client(cc, muxConfig(0), nil)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return newMuxConn(sess, st, cc, t, nil), nil
}

// countingConn counts the reads that returned data, which keepalives
// guarantee on a live connection, and, under a server's session, the data
// frames they bring (see frameMeter).
type countingConn struct {
	net.Conn
	reads  atomic.Uint64
	frames *frameMeter // nil under a client's session
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.reads.Add(1)
		if c.frames != nil {
			if ferr := c.frames.observe(b[:n]); ferr != nil {
				return n, ferr
			}
		}
	}
	return n, err
}

type muxConn struct {
	sess      *yamux.Session
	tls       tls.ConnectionState
	raw       *countingConn
	transport Transport
	ctx       context.Context
	cancel    context.CancelCauseFunc
	// accepted hands the streams the accept goroutine takes to
	// AcceptStream; that goroutine ends with the session, and closes
	// acceptDone then (CloseWithError waits for it).
	accepted   chan *yamux.Stream
	acceptDone chan struct{}
	// windows counts a server session's stream windows (nil for a
	// client's session, which trusts its server).
	windows *windowBudget
	// authenticated tells the listener that accepted the connection that
	// its client is known (see Authenticated); nil when there is none.
	authenticated func()
}

func newMuxConn(sess *yamux.Session, st tls.ConnectionState, raw *countingConn, t Transport, windows *windowBudget) *muxConn {
	ctx, cancel := context.WithCancelCause(context.Background())
	m := &muxConn{sess: sess, tls: st, raw: raw, transport: t, ctx: ctx, cancel: cancel, accepted: make(chan *yamux.Stream), acceptDone: make(chan struct{}), windows: windows}
	go m.acceptLoop()
	return m
}

// acceptLoop takes the peer's streams until the session ends, and then
// ends the context with why (the first cause set wins: a local close sets
// its own before the session ends).
func (m *muxConn) acceptLoop() {
	defer close(m.acceptDone)
	defer func() { _ = m.sess.Close() }()
	for {
		s, err := m.sess.AcceptStream()
		if err != nil {
			m.cancel(convertErr(err))
			return
		}
		select {
		case m.accepted <- s:
		case <-m.ctx.Done():
			_ = s.Reset()
			return
		}
	}
}

func (m *muxConn) OpenStream(ctx context.Context) (Stream, error) {
	s, err := m.sess.OpenStream(ctx)
	if err != nil {
		return nil, m.ended(err)
	}
	return m.stream(s), nil
}

func (m *muxConn) AcceptStream(ctx context.Context) (Stream, error) {
	select {
	case s := <-m.accepted:
		return m.stream(s), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-m.ctx.Done():
		return nil, context.Cause(m.ctx)
	}
}

// ended prefers the connection's cause, once known, to the multiplexer's
// own error for the same end.
func (m *muxConn) ended(err error) error {
	if m.ctx.Err() != nil {
		return context.Cause(m.ctx)
	}
	return convertErr(err)
}

func (m *muxConn) TLS() tls.ConnectionState { return m.tls }
func (m *muxConn) RemoteAddr() net.Addr     { return m.raw.RemoteAddr() }
func (m *muxConn) LocalAddr() net.Addr      { return m.raw.LocalAddr() }
func (m *muxConn) Context() context.Context { return m.ctx }
func (m *muxConn) RTT() time.Duration       { return m.sess.RTT() }
func (m *muxConn) Received() uint64         { return m.raw.reads.Load() }
func (m *muxConn) Transport() Transport     { return m.transport }

// CloseWithError sends the code in the multiplexer's go-away; the reason
// stays local (yamux carries no text). It returns once the goroutine that
// accepts the peer's streams has ended.
func (m *muxConn) CloseWithError(code quic.ApplicationErrorCode, reason string) error {
	m.cancel(&quic.ApplicationError{ErrorCode: code, ErrorMessage: reason})
	err := m.sess.CloseWithError(uint32(code))
	_ = m.raw.Close()
	<-m.acceptDone
	return err
}

// convertErr gives the multiplexer's errors the QUIC types the rest of
// connet already understands: a go-away is an application close with its
// code, a stream reset a stream error.
func convertErr(err error) error {
	var ga *yamux.GoAwayError
	var se *yamux.StreamError
	switch {
	case errors.As(err, &ga):
		return &quic.ApplicationError{Remote: ga.Remote, ErrorCode: quic.ApplicationErrorCode(ga.ErrorCode)}
	case errors.Is(err, yamux.ErrRemoteGoAway):
		return &quic.ApplicationError{Remote: true}
	case errors.As(err, &se):
		return &quic.StreamError{Remote: se.Remote, ErrorCode: quic.StreamErrorCode(se.ErrorCode)}
	}
	return err
}

// stream wraps s, a stream of m's, and counts its frames as the server's.
func (m *muxConn) stream(s *yamux.Stream) *muxStream {
	if f := m.raw.frames; f != nil {
		f.claim(s.StreamID())
		return &muxStream{s: s, frames: f}
	}
	return &muxStream{s: s}
}

type muxStream struct {
	s *yamux.Stream
	// frames counts the session's unread frames (nil for a client's).
	frames *frameMeter
}

func (m *muxStream) Read(b []byte) (int, error) {
	n, err := m.s.Read(b)
	if n > 0 && m.frames != nil {
		m.frames.consume(m.s.StreamID(), n)
	}
	if err != nil && err != io.EOF {
		err = convertErr(err)
	}
	return n, err
}

// ended forgets the stream's unread frames: yamux drops them with it.
func (m *muxStream) ended() {
	if m.frames != nil {
		m.frames.forget(m.s.StreamID())
	}
}

func (m *muxStream) Write(b []byte) (int, error) {
	n, err := m.s.Write(b)
	if err != nil {
		err = convertErr(err)
	}
	return n, err
}

func (m *muxStream) CloseWrite() error                  { return m.s.CloseWrite() }
func (m *muxStream) CloseRead()                         { _ = m.s.CloseRead(); m.ended() }
func (m *muxStream) Close() error                       { defer m.ended(); return m.s.Close() }
func (m *muxStream) Reset()                             { _ = m.s.ResetWithError(uint32(StreamAbort)); m.ended() }
func (m *muxStream) SetDeadline(t time.Time) error      { return m.s.SetDeadline(t) }
func (m *muxStream) SetReadDeadline(t time.Time) error  { return m.s.SetReadDeadline(t) }
func (m *muxStream) SetWriteDeadline(t time.Time) error { return m.s.SetWriteDeadline(t) }
