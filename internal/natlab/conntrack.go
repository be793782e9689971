package natlab

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Flow is one UDP conntrack entry of a router.
type Flow struct {
	// Expires is how long the entry has left without packets.
	Expires time.Duration
	// Line is conntrack's description of the entry.
	Line string
}

// UDPFlows lists the UDP conntrack entries of router r (one of
// l.Routers()); it needs conntrack(8).
func (l *Lab) UDPFlows(t testing.TB, r *Host) []Flow {
	t.Helper()
	requireConntrack(t)
	out, err := r.Run(context.Background(), "conntrack", "-L", "-p", "udp")
	if err != nil {
		t.Fatalf("natlab: list flows of %s: %v", r.Name, err)
	}
	var flows []Flow
	for line := range strings.Lines(out) {
		// "udp      17 7 src=… dst=… sport=… dport=… …": the third field
		// is the seconds left.
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "udp" {
			continue
		}
		secs, err := strconv.Atoi(f[2])
		if err != nil {
			t.Fatalf("natlab: flows of %s: parse %q: %v", r.Name, line, err)
		}
		flows = append(flows, Flow{Expires: time.Duration(secs) * time.Second, Line: strings.TrimSpace(line)})
	}
	return flows
}

// ForgetAll empties the conntrack table of every NAT router, as a NAT
// that reboots or runs out of table space does: every mapping through it
// is gone, and the next packet out may get a new one (a new port behind a
// fully-random NAT). It needs conntrack(8).
func (l *Lab) ForgetAll(t testing.TB) {
	t.Helper()
	requireConntrack(t)
	for _, r := range l.Routers() {
		if _, err := r.Run(context.Background(), "conntrack", "-F"); err != nil {
			t.Fatalf("natlab: flush conntrack in %s: %v", r.Name, err)
		}
	}
}

func requireConntrack(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Fatal(fmt.Errorf("natlab: conntrack not found (apt-get install -y conntrack): %w", err))
	}
}
