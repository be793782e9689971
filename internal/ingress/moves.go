package ingress

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/quic-go/quic-go"
)

// addrCheck is how often an accepted connection's remote address is
// compared with the one it was admitted at. QUIC lets a client move to a
// new address (connection migration) without a new handshake; quic-go
// tells nobody when it happens, so the server looks.
const addrCheck = time.Second

// WatchMoves follows conn's remote address until conn or ctx ends. When
// the client moves, allowed decides whether it may stay at the new
// address: if not, the connection is closed with code and the reason;
// otherwise moved, if set, is told the new address (for example to tell
// peers the client's new observed address).
func WatchMoves(ctx context.Context, conn muxconn.Conn, code quic.ApplicationErrorCode, allowed func(netip.Addr) error, moved func(netip.AddrPort)) {
	at := remoteAddrPort(conn)
	t := time.NewTicker(addrCheck)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-conn.Context().Done():
			return
		case <-ctx.Done():
			return
		}
		now := remoteAddrPort(conn)
		if now == at {
			continue
		}
		at = now
		if err := allowed(now.Addr()); err != nil {
			_ = conn.CloseWithError(code, err.Error())
			return
		}
		if moved != nil {
			moved(now)
		}
	}
}

func remoteAddrPort(conn muxconn.Conn) netip.AddrPort {
	ap, _ := AddrPort(conn.RemoteAddr())
	return ap
}

// AddrPort is a UDP or TCP address as an address and port, IPv4 unmapped.
func AddrPort(a net.Addr) (netip.AddrPort, bool) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}
