package portmap

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/p2pconnet/connet/internal/network"
)

// SystemGateway finds the gateway of the default IPv4 route in the
// routing table (/proc/net/route, Linux), and the local address n would
// send to it from.
func SystemGateway(n network.Network) func(context.Context) (gateway, local netip.Addr, err error) {
	return func(ctx context.Context) (gateway, local netip.Addr, err error) {
		f, err := os.Open("/proc/net/route")
		if err != nil {
			return gateway, local, fmt.Errorf("read the routing table (try nat-pmp = \"dial\"): %w", err)
		}
		defer f.Close()
		if gateway, err = defaultGateway(f); err != nil {
			return gateway, local, err
		}
		local, err = localAddrFor(ctx, n, netip.AddrPortFrom(gateway, 5351))
		return gateway, local, err
	}
}

// defaultGateway reads the gateway of the first default route of a
// /proc/net/route table, whose addresses are hexadecimal in host (little
// endian) byte order.
func defaultGateway(r io.Reader) (netip.Addr, error) {
	sc := bufio.NewScanner(r)
	sc.Scan() // the header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[1] != "00000000" || f[7] != "00000000" {
			continue
		}
		b, err := hex.DecodeString(f[2])
		if err != nil || len(b) != 4 {
			continue
		}
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], binary.LittleEndian.Uint32(b))
		gw := netip.AddrFrom4(a)
		if gw.IsUnspecified() {
			continue // a default route without a gateway (point to point)
		}
		return gw, nil
	}
	if err := sc.Err(); err != nil {
		return netip.Addr{}, err
	}
	return netip.Addr{}, errors.New("no IPv4 default route with a gateway")
}

// DialGateway finds the local address of a UDP "connection" to the
// control server (no packet is sent), for systems that hide their routing
// table, and takes as gateway the first address of that address's subnet
// (x.y.z.1 on a /24), where home routers conventionally are.
func DialGateway(n network.Network, controlAddr string) func(context.Context) (netip.Addr, netip.Addr, error) {
	return func(ctx context.Context) (netip.Addr, netip.Addr, error) {
		c, err := n.DialContext(ctx, "udp4", controlAddr)
		if err != nil {
			return netip.Addr{}, netip.Addr{}, fmt.Errorf("dial the control server: %w", err)
		}
		local := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
		_ = c.Close()
		prefix, err := subnetOf(local)
		if err != nil {
			return netip.Addr{}, local, err
		}
		return prefix.Masked().Addr().Next(), local, nil
	}
}

// subnetOf finds the interface subnet that holds a.
func subnetOf(a netip.Addr) (netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Prefix{}, err
	}
	for _, ia := range addrs {
		ipn, ok := ia.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		ones, _ := ipn.Mask.Size()
		if ok && ip.Unmap() == a {
			return netip.PrefixFrom(a, ones), nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no interface holds %s", a)
}

// localAddrFor returns the source address n picks towards dst (a UDP
// "connection": no packet is sent).
func localAddrFor(ctx context.Context, n network.Network, dst netip.AddrPort) (netip.Addr, error) {
	c, err := n.DialContext(ctx, "udp4", dst.String())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("route to the gateway %s: %w", dst.Addr(), err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}
