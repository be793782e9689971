package direct

import (
	"net"
	"net/netip"
)

// Families tells which IP families a socket bound to laddr can send to.
// A socket bound to an unspecified IPv6 address is dual-stack on Linux.
func Families(laddr net.Addr) (v4, v6 bool) {
	ua, ok := laddr.(*net.UDPAddr)
	if !ok {
		return true, true
	}
	ip, _ := netip.AddrFromSlice(ua.IP)
	switch {
	case !ip.IsValid():
		return true, true
	case ip.Is4() || ip.Is4In6():
		return true, false
	case ip.IsUnspecified():
		return true, true
	default:
		return false, true
	}
}

// Usable tells whether a candidate address is worth dialing from a socket
// that can send to the given families: no link-local addresses (they need a
// zone a peer cannot know), no multicast, nothing unspecified. Global IPv6
// addresses are the ones that connect peers behind IPv4 NATs directly;
// unique local ones (fc00::/7) stay, like private IPv4 ones, for peers on
// the same site.
func Usable(a netip.Addr, v4, v6 bool) bool {
	a = a.Unmap()
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsMulticast(),
		a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return false
	case a.Is4():
		return v4
	default:
		return v6
	}
}

// LocalAddrs lists the addresses of this host at which a socket bound to
// laddr accepts packets. Loopback addresses are included only if
// withLoopback: they reach a peer only when it runs on the same host.
func LocalAddrs(laddr net.Addr, withLoopback bool) ([]netip.AddrPort, error) {
	ua, ok := laddr.(*net.UDPAddr)
	if !ok {
		return nil, nil
	}
	port := uint16(ua.Port)
	v4, v6 := Families(laddr)
	if ip, ok := netip.AddrFromSlice(ua.IP); ok && !ip.IsUnspecified() {
		if ip = ip.Unmap(); Usable(ip, v4, v6) && (withLoopback || !ip.IsLoopback()) {
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
		if !Usable(ip, v4, v6) || (ip.IsLoopback() && !withLoopback) {
			continue
		}
		out = append(out, netip.AddrPortFrom(ip, port))
	}
	return out, nil
}
