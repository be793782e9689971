package forward

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/p2pconnet/connet/internal/config"
)

// writeProxyHeader sends the PROXY protocol header that tells the service
// who the real client is: origin (the client of the source, far away) as
// the source address, and the service's own address as the destination.
// Without an origin the header says so (v1 "UNKNOWN", v2 LOCAL) rather than
// passing off the destination client's own address as the client's.
func writeProxyHeader(ctx context.Context, conn net.Conn, version config.ProxyProtoVersion, origin netip.AddrPort) error {
	var v byte
	switch version {
	case config.ProxyProtoV1:
		v = 1
	case config.ProxyProtoV2:
		v = 2
	default:
		return fmt.Errorf("proxy-proto-version %q is not supported", version)
	}
	var src net.Addr // nil makes the header UNKNOWN/LOCAL
	if origin.IsValid() {
		// Unmap so an IPv4 client seen through a dual-stack socket is
		// written as IPv4, matching an IPv4 service address (a v1 header
		// cannot mix families).
		src = net.TCPAddrFromAddrPort(netip.AddrPortFrom(origin.Addr().Unmap(), origin.Port()))
	}
	h := proxyproto.HeaderProxyFromAddrs(v, src, conn.RemoteAddr())
	// The header is a few bytes on a fresh socket, but a service that never
	// reads must not hang the dial past its deadline.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(dl)
		defer func() { _ = conn.SetWriteDeadline(time.Time{}) }()
	}
	if _, err := h.WriteTo(conn); err != nil {
		return fmt.Errorf("writing PROXY %s header: %w", version, err)
	}
	return nil
}
