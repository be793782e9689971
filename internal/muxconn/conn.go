// Package muxconn is the one view servers and clients have of a connection
// to each other, whatever carries it: QUIC over UDP, or TLS 1.3 over TCP
// (optionally inside a WebSocket) with a stream multiplexer on top, for
// networks that block UDP. Control and relay code open and accept streams,
// read the peer's certificate and close with a code through Conn, so the
// same server and client code serves every transport.
package muxconn

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"time"

	"github.com/quic-go/quic-go"
)

// Transport names what carries a connection.
type Transport string

const (
	// QUIC is QUIC over UDP, the default.
	QUIC Transport = "quic"
	// TCP is TLS 1.3 over TCP carrying a stream multiplexer.
	TCP Transport = "tcp"
	// WSS is the same inside a WebSocket over HTTPS, which passes
	// HTTP-only proxies.
	WSS Transport = "wss"
)

// Conn is an authenticated connection carrying independent streams.
type Conn interface {
	// OpenStream opens a bidirectional stream.
	OpenStream(ctx context.Context) (Stream, error)
	// AcceptStream waits for the next stream the peer opens.
	AcceptStream(ctx context.Context) (Stream, error)
	// TLS is the state of the connection's TLS handshake (the peer's
	// certificates).
	TLS() tls.ConnectionState
	RemoteAddr() net.Addr
	LocalAddr() net.Addr
	// CloseWithError closes the connection and tells the peer code (and,
	// over QUIC, the reason).
	CloseWithError(code quic.ApplicationErrorCode, reason string) error
	// Context ends when the connection does; its cause says why, as a
	// *quic.ApplicationError when either side closed it with a code.
	Context() context.Context
	// RTT is the current round-trip estimate.
	RTT() time.Duration
	// Received counts what arrived so far (packets or reads): it grows
	// while the peer is alive, which is all package liveness needs.
	Received() uint64
	Transport() Transport
}

// Stream is one bidirectional stream of a Conn, with the semantics of
// path.Stream (which it satisfies) plus CloseRead.
type Stream interface {
	io.Reader
	io.Writer
	// CloseWrite ends the sending direction after all written data.
	CloseWrite() error
	// CloseRead stops reading; the peer's further writes fail.
	CloseRead()
	// Close is CloseWrite and CloseRead.
	Close() error
	// Reset abandons both directions; the peer sees an error.
	Reset()
	SetDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}
