package quicdial

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
