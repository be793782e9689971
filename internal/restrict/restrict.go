// Package restrict decides whether an address may connect, from allow and
// deny lists of CIDR prefixes.
package restrict

import (
	"fmt"
	"net/netip"
)

// IP holds allow and deny prefixes. The zero value accepts everything.
type IP struct {
	Allow []netip.Prefix
	Deny  []netip.Prefix
}

// ParseIP parses allow and deny lists in CIDR notation.
func ParseIP(allow, deny []string) (IP, error) {
	var r IP
	var err error
	if r.Allow, err = parsePrefixes(allow); err != nil {
		return IP{}, err
	}
	if r.Deny, err = parsePrefixes(deny); err != nil {
		return IP{}, err
	}
	return r, nil
}

func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ParsePrefix parses one CIDR prefix the way Allowed matches it: a prefix
// written as IPv4-mapped IPv6 (::ffff:10.0.0.0/104) becomes the IPv4
// network, and host bits are masked off so equal networks compare equal.
func ParsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: %w", s, err)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Allowed reports whether ip may connect: it is rejected if any deny prefix
// contains it, or if there are allow prefixes and none contains it.
//
// Dual-stack sockets show IPv4 peers as IPv4-mapped IPv6 addresses, so they
// are unmapped to match IPv4 prefixes; zones are dropped since no prefix
// contains a zoned address. An invalid address is rejected whenever a list
// is set: nothing proves it is outside a denied network.
func (r IP) Allowed(ip netip.Addr) bool {
	if !ip.IsValid() {
		return r.Empty()
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range r.Deny {
		if p.Contains(ip) {
			return false
		}
	}
	if len(r.Allow) == 0 {
		return true
	}
	for _, p := range r.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Empty tells whether r accepts everything without looking.
func (r IP) Empty() bool { return len(r.Allow) == 0 && len(r.Deny) == 0 }

// HostPrefix is what one host, or one site, holds of the address space
// around a: a itself for IPv4, its /64 for IPv6 (a site gets a /64 or
// more, and a host picks any address in it at will). Limits per address
// count by it, so that an IPv6 host cannot slip past them by changing
// addresses.
func HostPrefix(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}
