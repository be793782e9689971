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
		if got := r.Accepts(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("Accepts(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
	if !(IP{}).Accepts(netip.MustParseAddr("203.0.113.9")) {
		t.Error("empty restriction rejected an address")
	}
	if _, err := ParseIP([]string{"300.1.1.1/8"}, nil); err == nil {
		t.Error("invalid CIDR accepted")
	}
}
