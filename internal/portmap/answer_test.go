package portmap

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestCheckAnswer(t *testing.T) {
	for _, tc := range []struct {
		ext  string
		life time.Duration
		ok   bool
	}{
		{"203.0.113.20:4500", time.Hour, true},
		{"100.64.0.2:4500", time.Hour, true}, // behind a carrier NAT
		{"192.168.1.2:4500", time.Hour, true},
		{"203.0.113.20:0", time.Hour, false},
		{"127.0.0.1:4500", time.Hour, false},
		{"0.0.0.0:4500", time.Hour, false},
		{"224.0.0.1:4500", time.Hour, false},
		{"169.254.1.1:4500", time.Hour, false},
		{"255.255.255.255:4500", time.Hour, false},
		{"[2001:db8::1]:4500", time.Hour, false},
		{"203.0.113.20:4500", 0, false},
	} {
		err := checkAnswer(result{external: netip.MustParseAddrPort(tc.ext), lifetime: tc.life})
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errBadAnswer)) {
			t.Errorf("%s for %v: %v", tc.ext, tc.life, err)
		}
	}
	if err := checkAnswer(result{lifetime: time.Hour}); err == nil {
		t.Error("no external address was taken")
	}
}
