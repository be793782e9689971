package restrict

import (
	"net/netip"
	"testing"
)

func TestAccepts(t *testing.T) {
	r, err := ParseIP([]string{"192.0.2.0/24", "2001:db8::/32"}, []string{"192.0.2.128/25"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"192.0.2.1", true},
		{"192.0.2.200", false},        // denied wins over allowed
		{"198.51.100.1", false},       // not in the allow list
		{"::ffff:192.0.2.1", true},    // mapped IPv4 matches as IPv4
		{"::ffff:192.0.2.129", false}, // and is denied as IPv4
		{"2001:db8::1", true},
		{"2001:db9::1", false},
	} {
		if got := r.Allowed(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("Allowed(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
	if !(IP{}).Allowed(netip.MustParseAddr("203.0.113.9")) {
		t.Error("empty restriction rejected an address")
	}
	if (IP{Deny: r.Deny}).Allowed(netip.Addr{}) {
		t.Error("an invalid address passed a deny list")
	}
	mapped, err := ParseIP([]string{"::ffff:198.51.100.0/120"}, nil)
	if err != nil || !mapped.Allowed(netip.MustParseAddr("198.51.100.7")) {
		t.Errorf("IPv4-mapped prefix did not match its IPv4 address: %v", err)
	}
	if _, err := ParseIP([]string{"300.1.1.1/8"}, nil); err == nil {
		t.Error("invalid CIDR accepted")
	}
}

func TestHostPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7/32",
		"::ffff:192.0.2.7":     "192.0.2.7/32",
		"2001:db8:a:b:1:2:3:4": "2001:db8:a:b::/64",
	} {
		if got := HostPrefix(netip.MustParseAddr(in)); got.String() != want {
			t.Errorf("HostPrefix(%s) = %s, want %s", in, got, want)
		}
	}
}
