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
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("invalid CIDR %q: %w", s, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Accepts reports whether ip may connect: it is rejected if any deny prefix
// contains it, or if there are allow prefixes and none contains it.
// IPv4-mapped IPv6 addresses are matched as IPv4.
func (r IP) Accepts(ip netip.Addr) bool {
	ip = ip.Unmap()
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
