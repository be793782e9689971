// Package tuning gathers the QUIC settings and timing constants of connet in
// one place, each with the reason for its value.
package tuning

import (
	"time"

	"github.com/quic-go/quic-go"
)

const (
	// KeepAlive is how long a connection may go without receiving before
	// it sends a PING (which the peer acknowledges). Many NATs forget a UDP
	// mapping after 30 s without traffic (Linux conntrack: 30 s for a flow
	// seen one way, 120 s both ways); 5 s keeps mappings open with a wide
	// margin and lets a dead peer be noticed quickly (see StaleAfter).
	KeepAlive = 5 * time.Second
	// StaleAfter is how long a connection may receive nothing before it is
	// no longer chosen for new streams: a live peer answers every
	// keepalive within an RTT, so silence past KeepAlive plus a margin for
	// a lost packet means the peer or the path is gone. The connection is
	// kept (it recovers if packets arrive) until IdleTimeout.
	StaleAfter = KeepAlive + 2*time.Second
	// IdleTimeout closes a connection that received nothing for this long.
	IdleTimeout = 30 * time.Second
	// HandshakeTimeout is the default time to complete a QUIC handshake.
	HandshakeTimeout = 5 * time.Second

	// MaxStreams is how many concurrent streams a peer may open on one
	// connection; each tunnelled TCP connection is one stream. quic-go's
	// default of 100 makes the 101st connection wait, which looks like a
	// hang. The limit is no free ceiling, though: a peer that names the
	// highest stream it may open makes quic-go open every stream below it
	// at once, about 1.6 KiB each (131 072 of them cost a relay 210 MiB),
	// so 32 768 keeps tens of thousands of connections per pair of peers
	// (3× what TestScale runs) and such a burst to about 50 MiB.
	MaxStreams = 1 << 15

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
		// Datagrams carry only liveness pokes (see package liveness).
		EnableDatagrams: true,
	}
}
