package portmap

import (
	"context"
	"log/slog"
	"net"
	"net/netip"

	"github.com/p2pconnet/connet/internal/network"
)

// announceGroup is where NAT-PMP and PCP gateways announce a restart or a
// new external address (RFC 6886 section 3.2.1, RFC 6887 section 14.1.3):
// all hosts, port 5350.
var announceGroup = netip.AddrPortFrom(netip.AddrFrom4([4]byte{224, 0, 0, 1}), 5350)

// listenAnnouncements signals on the returned channel whenever gw sends
// something to the announcement group, until ctx ends. The message is not
// trusted beyond that: it only makes the mapper renew at once, and the
// renewal's own answer says whether the gateway restarted. The socket is
// bound to the group's address on n; every IPv4 host is a member of the
// all-hosts group, so there is no group to join. Without the socket (the
// port is taken without address reuse, say), the periodic renewals still
// notice. The listener ends with ctx; wait waits for that.
func listenAnnouncements(ctx context.Context, n network.Network, gw netip.Addr, log *slog.Logger) (announced <-chan struct{}, wait func()) {
	out := make(chan struct{}, 1)
	done := make(chan struct{})
	conn, err := n.ListenPacket(ctx, "udp4", announceGroup.String())
	if err != nil {
		log.Debug("not listening for gateway announcements", "err", err)
		close(done)
		return out, func() {}
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	go func() {
		defer close(done)
		defer stop()
		defer conn.Close()
		buf := make([]byte, 1100)
		for {
			_, addr, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if from, ok := addr.(*net.UDPAddr); !ok || from.AddrPort().Addr().Unmap() != gw {
				continue
			}
			select {
			case out <- struct{}{}:
			default:
			}
		}
	}()
	return out, func() { <-done }
}
