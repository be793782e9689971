// Package netpath defines the one boundary between connet's session layer and
// the ways of reaching a peer. A Path opens streams to one peer for an
// endpoint and reports what it is and how fast it is. Direct QUIC
// connections (this package) and relayed streams (package relayclient)
// implement it; a relayed path secures its own streams end to end, so no
// caller needs to know which kind it holds.
package netpath

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net"
	"time"
)

// Kind says how a path reaches its peer.
type Kind string

const (
	// DirectOutgoing is a QUIC connection this client dialed to the peer.
	DirectOutgoing Kind = "direct-outgoing"
	// DirectIncoming is a QUIC connection the peer dialed to this client.
	DirectIncoming Kind = "direct-incoming"
	// Relay is a stream through a relay server, reached over QUIC.
	Relay Kind = "relay"
	// RelayTCP is a stream through a relay server reached over TCP (or a
	// WebSocket): this client's UDP is blocked.
	RelayTCP Kind = "relay-tcp"
)

// Direct tells whether the path carries data straight to the peer.
func (k Kind) Direct() bool { return k == DirectOutgoing || k == DirectIncoming }

// Relayed tells whether the path goes through a relay, however reached.
func (k Kind) Relayed() bool { return k == Relay || k == RelayTCP }

// Path is one way to reach one peer.
type Path interface {
	Kind() Kind
	// RemoteAddr is where this path's packets go: the peer for a direct
	// path, the relay for a relayed one.
	RemoteAddr() net.Addr
	// RTT is the current smoothed round-trip estimate.
	RTT() time.Duration
	// OpenStream opens a new bidirectional stream to the peer for the
	// named endpoint, secured end to end.
	OpenStream(ctx context.Context, endpoint string) (Stream, error)
	// Done is closed when the path can no longer carry streams.
	Done() <-chan struct{}
	// Close stops the path; streams on it end.
	Close() error
}

// LogValue is how a path is logged: its kind, its remote address as a
// string and its RTT in milliseconds.
func LogValue(p Path) slog.Value {
	return slog.GroupValue(
		slog.String("kind", string(p.Kind())),
		slog.String("remote", p.RemoteAddr().String()),
		slog.Float64("rtt_ms", math.Round(float64(p.RTT())/float64(time.Microsecond))/1000),
	)
}

// Stream is a reliable, ordered byte stream to a peer with independent
// directions.
type Stream interface {
	io.Reader
	io.Writer
	// CloseWrite ends the sending direction after all written data; the
	// peer reads io.EOF.
	CloseWrite() error
	// Close ends the sending direction like CloseWrite (written data is
	// still delivered, as with a TCP socket) and stops reading.
	Close() error
	// Reset abandons both directions at once; the peer sees an error, not
	// a clean end, so truncation never passes for completion.
	Reset()
	SetDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}
