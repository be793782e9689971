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

// ToAddrPort validates and converts a wire address. The control server
// reads every candidate a client announces with it, and ends the session
// of a client that sends one CheckAddrPort refuses.
func ToAddrPort(a *pb.AddrPort) (netip.AddrPort, error) {
	if a == nil {
		return netip.AddrPort{}, fmt.Errorf("wire: missing address")
	}
	ip, ok := netip.AddrFromSlice(a.GetIp())
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("wire: invalid IP of %d bytes", len(a.GetIp()))
	}
	if a.GetPort() > 65535 {
		return netip.AddrPort{}, fmt.Errorf("wire: invalid port %d", a.GetPort())
	}
	ap := netip.AddrPortFrom(ip.Unmap(), uint16(a.GetPort()))
	if err := CheckAddrPort(ap); err != nil {
		return netip.AddrPort{}, err
	}
	return ap, nil
}

// CheckAddrPort is the rule every address on the wire follows: an IP
// address and a port other than 0. A client checks its candidates with it
// before it announces them, since the server refuses (and disconnects)
// a client that announces one that breaks it.
func CheckAddrPort(a netip.AddrPort) error {
	if !a.Addr().IsValid() {
		return fmt.Errorf("wire: no IP address")
	}
	if a.Port() == 0 {
		return fmt.Errorf("wire: invalid port 0")
	}
	return nil
}
