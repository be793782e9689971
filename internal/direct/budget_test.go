package direct

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestProbeBudget: a target gets one full burst, then probes at the
// refill rate; another IPv4 address has its own budget, while every
// address of one IPv6 /64 (and an IPv4-mapped address and its IPv4 one)
// share theirs.
func TestProbeBudget(t *testing.T) {
	var b probeBudget
	now := time.Unix(1000, 0)
	spend := func(a string, n int) int {
		took := 0
		for range n {
			if b.take(netip.MustParseAddr(a), now) {
				took++
			}
		}
		return took
	}
	if got := spend("198.51.100.1", probeBurst+10); got != probeBurst {
		t.Fatalf("first burst: %d probes, want %d", got, probeBurst)
	}
	if got := spend("::ffff:198.51.100.1", 1); got != 0 {
		t.Fatal("the IPv4-mapped form of a spent address got a probe")
	}
	if got := spend("198.51.100.2", probeBurst); got != probeBurst {
		t.Fatalf("another address: %d probes, want its own %d", got, probeBurst)
	}
	now = now.Add(probeRefill / 4)
	if got := spend("198.51.100.1", probeBurst); got != probeBurst/4 {
		t.Fatalf("a quarter of the refill time later: %d probes, want %d", got, probeBurst/4)
	}
	if got := spend("2001:db8::1", probeBurst); got != probeBurst {
		t.Fatalf("an IPv6 address: %d probes, want %d", got, probeBurst)
	}
	if got := spend("2001:db8::ffff:2", 1); got != 0 {
		t.Fatal("another address of the same /64 got a probe")
	}
	if got := spend("2001:db8:0:1::1", 1); got != 1 {
		t.Fatal("an address of another /64 got no probe")
	}
}

// TestProbeBudgetTargets: the buckets kept are bounded; full ones make
// room for new targets, and while none is full a new target waits.
func TestProbeBudgetTargets(t *testing.T) {
	var b probeBudget
	now := time.Unix(1000, 0)
	addr := func(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("10.%d.%d.1", i>>8, i&0xff)) }
	for i := range maxProbeTargets {
		if !b.take(addr(i), now) {
			t.Fatalf("target %d refused", i)
		}
	}
	if b.take(addr(maxProbeTargets), now) {
		t.Fatal("a target over the bound was given a bucket while none is full")
	}
	now = now.Add(probeRefill)
	if !b.take(addr(maxProbeTargets), now) {
		t.Fatal("a new target refused once the others filled up again")
	}
	if len(b.buckets) != 1 {
		t.Fatalf("%d buckets kept, want only the new target's", len(b.buckets))
	}
}
