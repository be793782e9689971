package wire

import (
	"fmt"
	"net/netip"

	"github.com/p2pconnet/connet/internal/wire/pb"
)

// FromAddrPort converts an address to its wire form, unmapping IPv4-in-IPv6
// so that both ends compare addresses the same way.
func FromAddrPort(a netip.AddrPort) *pb.AddrPort {
	ip := a.Addr().Unmap()
	return &pb.AddrPort{Ip: ip.AsSlice(), Port: uint32(a.Port())}
}

// ToAddrPort validates and converts a wire address.
func ToAddrPort(a *pb.AddrPort) (netip.AddrPort, error) {
	if a == nil {
		return netip.AddrPort{}, fmt.Errorf("wire: missing address")
	}
	ip, ok := netip.AddrFromSlice(a.GetIp())
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("wire: invalid IP of %d bytes", len(a.GetIp()))
	}
	if a.GetPort() == 0 || a.GetPort() > 65535 {
		return netip.AddrPort{}, fmt.Errorf("wire: invalid port %d", a.GetPort())
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(a.GetPort())), nil
}
