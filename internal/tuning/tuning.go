// Package tuning gathers the QUIC settings and timing constants of connet in
// one place, each with the reason for its value.
package tuning

import (
	"time"

	"github.com/quic-go/quic-go"
)

const (
	// KeepAlive is how often an otherwise idle connection sends a packet.
	// Many NATs forget a UDP mapping after 30 s without traffic (Linux
	// conntrack: 30 s for a flow seen one way, 120 s both ways), so 10 s
	// keeps mappings open with a good margin.
	KeepAlive = 10 * time.Second
	// IdleTimeout closes a connection that received nothing for this long:
	// three missed keepalives mean the peer or the path is gone.
	IdleTimeout = 3 * KeepAlive
	// HandshakeTimeout is the default time to complete a QUIC handshake.
	HandshakeTimeout = 5 * time.Second

	// MaxStreams is how many concurrent streams a peer may open on one
	// connection; each tunnelled TCP connection is one stream. quic-go's
	// default of 100 makes the 101st connection wait, which looks like a
	// hang; streams cost memory only while they carry data.
	MaxStreams = 1 << 17

	// Flow-control windows sized for the bandwidth-delay product of fast
	// links (1 Gbit/s at 100 ms is ~12 MiB in flight).
	MaxStreamWindow     = 16 << 20
	MaxConnectionWindow = 64 << 20
)

// QUIC returns the configuration for connet's QUIC connections.
// handshake <= 0 means HandshakeTimeout.
func QUIC(handshake time.Duration) *quic.Config {
	if handshake <= 0 {
		handshake = HandshakeTimeout
	}
	return &quic.Config{
		Versions:                   []quic.Version{quic.Version1},
		HandshakeIdleTimeout:       handshake,
		MaxIdleTimeout:             IdleTimeout,
		KeepAlivePeriod:            KeepAlive,
		MaxIncomingStreams:         MaxStreams,
		MaxIncomingUniStreams:      -1,
		MaxStreamReceiveWindow:     MaxStreamWindow,
		MaxConnectionReceiveWindow: MaxConnectionWindow,
	}
}
