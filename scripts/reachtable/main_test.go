package main

import (
	"strings"
	"testing"
)

// TestRender: rows come from TestReach's lines (with expected=), before and
// after side by side; an outcome that differs from the expectation is
// marked; the direct path's family comes from its remote address; stalls
// get their own table and other lines are kept verbatim.
func TestRender(t *testing.T) {
	before, err := parse(strings.NewReader(`# revision abc
    reach_test.go:45: MEASURE topology=X outcome=relay expected=direct first_byte_ms=70 direct_ms=0 remote=-
MEASURE topology=Cone flush_at_ms=1000 stall_ms=7292 transfer_ms=8457 path_after=direct-incoming
`))
	if err != nil {
		t.Fatal(err)
	}
	after, err := parse(strings.NewReader(`
MEASURE topology=X outcome=direct expected=direct first_byte_ms=65 direct_ms=79 remote=[2001:db8:a::2]:19192
MEASURE topology=Y outcome=direct expected=direct first_byte_ms=12000 direct_ms=80 remote=192.0.2.2:19192
MEASURE topology=Cone flush_at_ms=1000 stall_ms=27 stall_at_ms=1002 transfer_ms=3010 path_after=direct-outgoing
MEASURE topology=Z outcome=direct probes=256
`))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	render(&b, before, after, "abc", "def")
	out := b.String()
	for _, want := range []string{
		"| X | direct | **relay** (expected direct) | 70 ms | – | direct | 65 ms | 79 ms | IPv6 |",
		"| Y | direct | (not measured) | – | – | direct | 12.0 s | 80 ms | IPv4, LAN |",
		"| Cone | direct-outgoing | 7292 ms | 27 ms | 1002 ms | 3010 ms |",
		"topology=Z outcome=direct probes=256",
		"*Before* is abc, *after* is def.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
