package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
)

// Bounds of the lab tests: generous, since CI machines are slow; they are
// limits on waiting, not expectations of speed.
const (
	pathLimit  = 20 * time.Second
	fetchLimit = 20 * time.Second
)

// TestTopologies runs a server, a destination on A exposing an HTTP
// service, and a source on B, in each lab topology, and checks which path
// carries a fetch through the tunnel.
func TestTopologies(t *testing.T) {
	for _, tc := range []struct {
		topo natlab.Topology
		// direct is whether a direct path must come up: whenever at least
		// one side keeps its NAT mapping (and, behind one NAT, over the LAN;
		// behind a symmetric NAT facing a cone, by the birthday punch).
		// Otherwise the server's relay carries the traffic.
		direct bool
	}{
		{natlab.Public, true},
		{natlab.Cone, true},
		{natlab.SameLAN, true},
		{natlab.DoubleNAT, true},
		{natlab.Symmetric, true},
		{natlab.BothSymmetric, false},
		{natlab.SymmetricB, true},
	} {
		t.Run(tc.topo.String(), func(t *testing.T) {
			d := newDeployment(t, tc.topo)
			body := randomBody(t, 4<<20)
			d.serveHTTP(body)
			d.startServer()
			d.lab.ResetPeerTraffic(t)

			start := time.Now()
			dst := d.startDestination("any")
			src := d.startSource("any")
			probes := func() int { return punchProbes(dst.Output()) + punchProbes(src.Output()) }

			if !tc.direct {
				checkRelayed(t, d, start, body, probes)
				return
			}
			// Watch for the direct path while fetching, so both are timed
			// from the clients' start.
			type pathResult struct {
				st  connet.ClientStatus
				at  time.Duration
				err error
			}
			pathCh := make(chan pathResult, 1)
			go func() {
				st, _, err := waitStatus(d.lab.B, pathLimit, hasDirect)
				pathCh <- pathResult{st, time.Since(start), err}
			}()
			if _, err := d.fetchEventually(body, fetchLimit); err != nil {
				t.Fatal(err)
			}
			firstByte := time.Since(start)
			pr := <-pathCh
			if pr.err != nil {
				t.Fatal(pr.err)
			}
			checkNAT(t, d)
			paths := sourcePaths(pr.st)
			t.Logf("MEASURE topology=%s outcome=direct first_byte_ms=%d direct_ms=%d probes=%d path=%s remote=%s rtt_ms=%.2f",
				tc.topo, firstByte.Milliseconds(), pr.at.Milliseconds(), probes(), paths[0].Kind, paths[0].Remote, paths[0].RTTms)
			// Judge by the wire too: packets crossed directly between A
			// and B, both ways.
			if traffic := d.lab.PeerTraffic(t); !traffic.Direct() {
				t.Fatalf("status shows a direct path but no packets crossed between A and B: %s", traffic)
			}
			if tc.topo == natlab.SameLAN && !strings.HasPrefix(paths[0].Remote, "192.0.2.") {
				t.Fatalf("behind one NAT without hairpin the path must use the LAN, got %s", paths[0].Remote)
			}
		})
	}
}

// checkRelayed checks a topology where punching cannot succeed (two fully
// random NATs: neither mapping can be known, so not even the birthday
// punch applies): the relay carries the traffic, and no packet crosses
// directly.
func checkRelayed(t *testing.T, d *deployment, start time.Time, body []byte, probes func() int) {
	t.Helper()
	if _, err := d.fetchEventually(body, fetchLimit); err != nil {
		t.Fatal(err)
	}
	firstByte := time.Since(start)
	st, _, err := waitStatus(d.lab.B, pathLimit, hasRelay)
	if err != nil {
		t.Fatal(err)
	}
	if hasDirect(st) {
		t.Fatalf("a direct path came up through a symmetric NAT: %+v", sourcePaths(st))
	}
	checkNAT(t, d)
	traffic := d.lab.PeerTraffic(t)
	if traffic.AFromB > 0 && traffic.BFromA > 0 {
		t.Fatalf("packets crossed directly both ways through a symmetric NAT: %s", traffic)
	}
	t.Logf("MEASURE topology=%s outcome=relay first_byte_ms=%d direct_ms=0 probes=%d direct_traffic=%q", d.lab.Topology, firstByte.Milliseconds(), probes(), traffic)
}

// checkNAT checks how B's client says its NAT maps, once it knows (after
// its relay connected): per destination behind a fully-random NAT,
// independently of it otherwise.
func checkNAT(t *testing.T, d *deployment) {
	t.Helper()
	want := "independent"
	if d.lab.Topology == natlab.BothSymmetric || d.lab.Topology == natlab.SymmetricB {
		want = "per-destination"
	}
	st, _, err := waitStatus(d.lab.B, pathLimit, func(st connet.ClientStatus) bool { return st.Control.NAT != "" })
	if err != nil {
		t.Fatalf("B never worked out its NAT mapping: %v", err)
	}
	if st.Control.NAT != want {
		t.Fatalf("B reports its NAT as %q, want %q", st.Control.NAT, want)
	}
}

// punchRe finds the end of a birthday punch in a client's log and the
// probes it sent.
var punchRe = regexp.MustCompile(`symmetric NAT punch (?:made a direct path|found no path).* probes=(\d+)`)

// punchProbes sums the probes of every birthday punch a client logged.
func punchProbes(log string) int {
	total := 0
	for _, m := range punchRe.FindAllStringSubmatch(log, -1) {
		n, _ := strconv.Atoi(m[1])
		total += n
	}
	return total
}
