package e2e

import (
	"context"
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
	// symmetricWindow is how long the symmetric case gets to find a direct
	// path it cannot find: several punching rounds.
	symmetricWindow = 8 * time.Second
)

// TestTopologies runs a server, a destination on A exposing an HTTP
// service, and a source on B, in each lab topology, and checks which path
// carries a fetch through the tunnel.
func TestTopologies(t *testing.T) {
	for _, tc := range []struct {
		topo natlab.Topology
		// direct is whether a direct path must come up: whenever at least
		// one side keeps its NAT mapping (and, behind one NAT, over the LAN).
		direct bool
	}{
		{natlab.Public, true},
		{natlab.Cone, true},
		{natlab.SameLAN, true},
		{natlab.DoubleNAT, true},
		{natlab.Symmetric, false},
	} {
		t.Run(tc.topo.String(), func(t *testing.T) {
			d := newDeployment(t, tc.topo)
			body := randomBody(t, 4<<20)
			d.serveHTTP(body)
			d.startServer()
			d.lab.ResetPeerTraffic(t)

			start := time.Now()
			d.startDestination("any")
			d.startSource("any")

			if !tc.direct {
				checkNoDirect(t, d)
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
			paths := sourcePaths(pr.st)
			t.Logf("MEASURE topology=%s direct_path_ms=%d first_fetch_ms=%d path=%s remote=%s rtt_ms=%.2f",
				tc.topo, pr.at.Milliseconds(), firstByte.Milliseconds(), paths[0].Kind, paths[0].Remote, paths[0].RTTms)
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

// checkNoDirect records the symmetric case as it is: without a relay there
// is no path, the source says so, and its clients' connections are closed.
func checkNoDirect(t *testing.T, d *deployment) {
	t.Helper()
	// Both clients know each other (the control server did its part)...
	if _, _, err := waitStatus(d.lab.B, pathLimit, func(st connet.ClientStatus) bool {
		return len(st.Sources) == 1 && len(st.Sources[0].Peers) == 1
	}); err != nil {
		t.Fatal(err)
	}
	// ...but punching cannot get through a fully random NAT on one side and
	// an address-and-port-dependent filter on the other.
	time.Sleep(symmetricWindow)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := status(ctx, d.lab.B)
	if err != nil {
		t.Fatal(err)
	}
	if hasDirect(st) {
		t.Fatalf("a direct path came up through a symmetric NAT: %+v", sourcePaths(st))
	}
	if _, err := d.fetch(ctx); err == nil {
		t.Fatal("a fetch succeeded with no path between the clients")
	}
	traffic := d.lab.PeerTraffic(t)
	if traffic.Direct() {
		t.Fatalf("packets crossed directly both ways through a symmetric NAT: %s", traffic)
	}
	t.Logf("MEASURE topology=%s direct=false traffic=%q", d.lab.Topology, traffic)
}
