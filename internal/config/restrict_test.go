package config_test

import (
	"net/netip"
	"testing"

	"github.com/p2pconnet/connet/internal/config"
)

func TestCIDRRestrictionAllowed(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	specExample := config.CIDRRestriction{Allow: pfx("192.0.2.0/24"), Deny: pfx("198.51.100.0/24")}
	tests := []struct {
		name string
		r    config.CIDRRestriction
		addr string
		want bool
	}{
		{"no lists allow all", config.CIDRRestriction{}, "203.0.113.9", true},
		{"no lists allow ipv6", config.CIDRRestriction{}, "2001:db8::1", true},
		{"spec allow match", specExample, "192.0.2.10", true},
		{"spec deny match", specExample, "198.51.100.7", false},
		{"spec neither", specExample, "203.0.113.9", false},
		{"deny beats allow", config.CIDRRestriction{Allow: pfx("10.0.0.0/8"), Deny: pfx("10.1.0.0/16")}, "10.1.2.3", false},
		{"allow outside deny", config.CIDRRestriction{Allow: pfx("10.0.0.0/8"), Deny: pfx("10.1.0.0/16")}, "10.2.2.3", true},
		{"deny only", config.CIDRRestriction{Deny: pfx("10.0.0.0/8")}, "11.0.0.1", true},
		{"deny only match", config.CIDRRestriction{Deny: pfx("10.0.0.0/8")}, "10.0.0.1", false},
		{"mapped ipv4 matches ipv4 allow", specExample, "::ffff:192.0.2.10", true},
		{"mapped ipv4 matches ipv4 deny", config.CIDRRestriction{Deny: pfx("10.0.0.0/8")}, "::ffff:10.0.0.1", false},
		{"ipv4 allow does not admit ipv6", specExample, "2001:db8::1", false},
		{"ipv6 allow", config.CIDRRestriction{Allow: pfx("2001:db8::/32")}, "2001:db8::1", true},
		{"ipv6 zone ignored", config.CIDRRestriction{Allow: pfx("fe80::/10")}, "fe80::1%eth0", true},
		{"ipv6 zone deny", config.CIDRRestriction{Deny: pfx("fe80::/10")}, "fe80::1%eth0", false},
		{"ipv6 deny all keeps ipv4", config.CIDRRestriction{Deny: pfx("::/0")}, "::ffff:1.2.3.4", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Allowed(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Fatalf("Allowed(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}

	// An unknown address is only acceptable when nothing is restricted.
	if !(config.CIDRRestriction{}).Allowed(netip.Addr{}) {
		t.Error("zero addr with no restriction should be allowed")
	}
	if (config.CIDRRestriction{Deny: pfx("10.0.0.0/8")}).Allowed(netip.Addr{}) {
		t.Error("zero addr with a restriction should be rejected")
	}
}

func TestCIDRParsingFromConfig(t *testing.T) {
	serverFixture(t)
	cfg := load(t, t.TempDir(), "s.toml", "[server]\ntokens = [\"a\"]\n"+srvIngress+
		"allow-cidrs = [\"192.0.2.77/24\", \"::ffff:198.51.100.0/120\"]\ndeny-cidrs = [\"2001:db8::/32\"]\n")
	s, err := cfg.ServerSettings(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Ingress[0].Restriction
	// Host bits are masked and mapped prefixes become IPv4.
	want := []string{"192.0.2.0/24", "198.51.100.0/24"}
	for i, w := range want {
		if r.Allow[i].String() != w {
			t.Errorf("allow[%d] = %s, want %s", i, r.Allow[i], w)
		}
	}
	if !r.Allowed(netip.MustParseAddr("198.51.100.1")) || r.Allowed(netip.MustParseAddr("2001:db8::1")) {
		t.Errorf("restriction %+v", r)
	}
}
