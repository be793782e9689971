package direct

import (
	"net"
	"net/netip"

	"github.com/p2pconnet/connet/internal/quicdial"
)

// LocalAddrs lists the addresses of this host at which a socket bound to
// laddr accepts packets. Loopback addresses are included only if
// withLoopback: they reach a peer only when it runs on the same host.
func LocalAddrs(laddr net.Addr, withLoopback bool) ([]netip.AddrPort, error) {
	ua, ok := laddr.(*net.UDPAddr)
	if !ok {
		return nil, nil
	}
	port := uint16(ua.Port)
	v4, v6 := quicdial.Families(laddr)
	if ip, ok := netip.AddrFromSlice(ua.IP); ok && !ip.IsUnspecified() {
		if ip = ip.Unmap(); quicdial.Usable(ip, v4, v6) && (withLoopback || !ip.IsLoopback()) {
			return []netip.AddrPort{netip.AddrPortFrom(ip, port)}, nil
		}
		return nil, nil
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.AddrPort
	for _, ia := range ifaddrs {
		ipnet, ok := ia.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipnet.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if !quicdial.Usable(ip, v4, v6) || (ip.IsLoopback() && !withLoopback) {
			continue
		}
		out = append(out, netip.AddrPortFrom(ip, port))
	}
	return out, nil
}
