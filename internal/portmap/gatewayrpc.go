package portmap

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/p2pconnet/connet/internal/network"
	"github.com/p2pconnet/connet/internal/portmap/pcp"
)

// gatewayRPC sends msg to the gateway at gw from the local address facing
// it (local, or the one n routes from when local is unset), and waits for
// an answer that answer takes, resending on the schedule NAT-PMP and PCP
// share (RFC 6886 section 3.1, RFC 6887 section 8.1.1 starting at 250 ms
// as NAT-PMP does, since the gateway is on the LAN): from 250 ms,
// doubling, until ctx ends. Datagrams from any other address are
// skipped; answer skips others (ok false) or ends the call with an error.
// build makes the message for the local address it is sent from (which
// PCP names in its request).
func gatewayRPC(ctx context.Context, n network.Network, gw netip.AddrPort, local netip.Addr, build func(local netip.Addr) []byte, answer func([]byte) (ok bool, err error)) error {
	if !local.IsValid() {
		var err error
		if local, err = localAddrFor(ctx, n, gw); err != nil {
			return err
		}
	}
	conn, err := openGatewaySocket(ctx, n, local, gw)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	msg := build(local)
	buf := make([]byte, pcp.MaxLen) // NAT-PMP's are shorter
	for wait := 250 * time.Millisecond; ; wait *= 2 {
		if _, err := conn.WriteTo(msg, net.UDPAddrFromAddrPort(gw)); err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		err := readAnswer(ctx, conn, gw, buf, answer)
		if !errors.Is(err, errResend) {
			return err
		}
	}
}

// errResend: no answer came before the read deadline.
var errResend = errors.New("no answer yet")

// readAnswer reads datagrams until answer takes one from gw (errResend
// at the read deadline).
func readAnswer(ctx context.Context, conn net.PacketConn, gw netip.AddrPort, buf []byte, answer func([]byte) (bool, error)) error {
	for {
		n, from, err := conn.ReadFrom(buf)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return errResend
		}
		if err != nil {
			return err
		}
		if ua, ok := from.(*net.UDPAddr); !ok || netip.AddrPortFrom(ua.AddrPort().Addr().Unmap(), ua.AddrPort().Port()) != gw {
			continue // not the gateway
		}
		if ok, err := answer(buf[:n]); ok || err != nil {
			return err
		}
	}
}

// openGatewaySocket opens the socket that speaks to gw from local. On the
// operating system's network it is connected to gw: the system then
// reports the ICMP port unreachable of a gateway that does not speak the
// protocol as a refusal (ECONNREFUSED) on the next read, and the next
// protocol is tried at once rather than after the request's time limit.
// An unconnected socket is not told of it.
func openGatewaySocket(ctx context.Context, n network.Network, local netip.Addr, gw netip.AddrPort) (net.PacketConn, error) {
	from := netip.AddrPortFrom(local, 0)
	if _, ok := n.(network.OS); !ok {
		return n.ListenPacket(ctx, "udp4", from.String())
	}
	d := net.Dialer{LocalAddr: net.UDPAddrFromAddrPort(from)}
	c, err := d.DialContext(ctx, "udp4", gw.String())
	if err != nil {
		return nil, err
	}
	return connectedUDP{c.(*net.UDPConn)}, nil
}

// connectedUDP is a UDP socket connected to the gateway: WriteTo sends to
// it (a connected socket refuses an address).
type connectedUDP struct{ *net.UDPConn }

func (c connectedUDP) WriteTo(b []byte, _ net.Addr) (int, error) { return c.Write(b) }
