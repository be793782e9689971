package config

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"

	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/restrict"
)

// CIDRRestriction limits which remote IP addresses may connect, by the
// spec's "IP Restrictions" rule; see restrict.IP, which the servers use.
type CIDRRestriction = restrict.IP

// TokenRestriction is what a single client token is allowed to do.
type TokenRestriction struct {
	// CIDRs limits where clients using the token may connect from.
	CIDRs CIDRRestriction
	// NameMatches, when not nil, must match (anywhere, as regexp.MatchString
	// does; anchor it with ^...$ for a full match) the name of every
	// destination or source the client announces.
	NameMatches *regexp.Regexp
	// Role, when set, is the only role the client may take; empty allows
	// both.
	Role peer.Role
}

// AllowsName reports whether an endpoint called name may be used.
func (t TokenRestriction) AllowsName(name string) bool {
	return t.NameMatches == nil || t.NameMatches.MatchString(name)
}

// AllowsRole reports whether the client may act as role.
func (t TokenRestriction) AllowsRole(role peer.Role) bool {
	return t.Role == "" || t.Role == role
}

// cidrRestriction parses the allow-cidrs / deny-cidrs pair found in ingress
// and restriction tables under p.
func (r *resolver) cidrRestriction(p keyPath, allow, deny []string) CIDRRestriction {
	return CIDRRestriction{
		Allow: r.prefixes(p.key("allow-cidrs"), allow),
		Deny:  r.prefixes(p.key("deny-cidrs"), deny),
	}
}

// prefixes parses CIDR strings, reporting each bad one by its index.
func (r *resolver) prefixes(p keyPath, raw []string) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range raw {
		pfx, err := restrict.ParsePrefix(s)
		if err != nil {
			r.fail(p.index(i), fmt.Sprintf("invalid CIDR %q", s), errors.Unwrap(err))
			continue
		}
		out = append(out, pfx)
	}
	return out
}

// tokenRestrictions parses a [[...token-restriction]] list and checks that
// it pairs up with the tokens, which it does by position.
func (r *resolver) tokenRestrictions(p keyPath, raw []TokenRestrictionConfig, tokens int) []TokenRestriction {
	if len(raw) == 0 {
		return nil
	}
	if len(raw) != tokens {
		r.failf(p, "%d restrictions for %d tokens: when present, there must be exactly one per token", len(raw), tokens)
	}
	out := make([]TokenRestriction, len(raw))
	for i, tr := range raw {
		ip := p.index(i)
		out[i].CIDRs = r.cidrRestriction(ip, tr.AllowCIDRs, tr.DenyCIDRs)
		if tr.NameMatches != "" {
			re, err := regexp.Compile(tr.NameMatches)
			if err != nil {
				r.fail(ip.key("name-matches"), fmt.Sprintf("invalid regular expression %q", tr.NameMatches), err)
			}
			out[i].NameMatches = re
		}
		out[i].Role = oneOf(r, ip.key("role-matches"), tr.RoleMatches, "", peer.Source, peer.Destination)
	}
	return out
}

// cidrRestrictions parses a list of network-only restrictions that pair up
// with tokens by position (relays have no names or roles).
func (r *resolver) cidrRestrictions(p keyPath, raw []CIDRRestrictionConfig, tokens int) []CIDRRestriction {
	if len(raw) == 0 {
		return nil
	}
	if len(raw) != tokens {
		r.failf(p, "%d restrictions for %d tokens: when present, there must be exactly one per token", len(raw), tokens)
	}
	out := make([]CIDRRestriction, len(raw))
	for i, cr := range raw {
		out[i] = r.cidrRestriction(p.index(i), cr.AllowCIDRs, cr.DenyCIDRs)
	}
	return out
}
