// Package network is the one way connet reaches the network: clients,
// servers, relays, the TCP and WebSocket fallback and port mapping open
// every socket through a Network. The operating system's is OS; tests hand
// in a simulated one (internal/simnet) to run NATs and blocked UDP in
// process, without root.
package network

import (
	"context"
	"net"
)

// Network opens sockets. Its methods are those of net.ListenConfig and
// net.Dialer, so a type embedding both is one.
type Network interface {
	// ListenPacket binds a datagram socket ("udp", "udp4").
	ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error)
	// Listen binds a stream listener ("tcp", "tcp4").
	Listen(ctx context.Context, network, address string) (net.Listener, error)
	// DialContext connects to address ("tcp", "tcp4"; "udp" and "udp4"
	// for a connected datagram socket).
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// OS is the operating system's network. Its UDP sockets are
// *net.UDPConn, on which quic-go uses batched reads, GSO and ECN.
type OS struct{}

// ListenPacket binds a socket with the system's defaults.
func (OS) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	var lc net.ListenConfig
	return lc.ListenPacket(ctx, network, address)
}

// Listen binds a listener with the system's defaults.
func (OS) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, network, address)
}

// DialContext connects with the system's defaults.
func (OS) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

// Or is n, or OS if n is nil: components built without a network (in
// their own tests, say) use the system's.
func Or(n Network) Network {
	if n == nil {
		return OS{}
	}
	return n
}
