package e2e

import (
	"os"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/natlab"
)

// How long TestReach waits for a direct path: a topology expected to
// connect directly gets the lab's usual bound; elsewhere a shorter wait
// still notices a direct path that comes up after the relay (e.g. after
// a slow punch), without making the table take minutes.
const (
	reachDirectWait = pathLimit
	reachLateWait   = 5 * time.Second
)

// reachResult is what one topology gave: the outcome, when the first
// fetch through the tunnel completed, and when the status first showed a
// direct path (zero if it never did), both from the clients' start.
type reachResult struct {
	outcome   natlab.Path
	firstByte time.Duration
	direct    time.Duration
	remote    string // of the direct path
	err       error  // why the tunnel failed, for PathFail
}

// TestReach is the reach table (docs/reach.md, scripts/reach.sh): every
// lab topology, its outcome (direct, relay or fail), time to the first
// byte and time to a direct path, logged as MEASURE lines. Each outcome
// must equal the topology's ExpectedPath, so a regression fails. It runs
// only with CONNET_REACH=1 (from scripts/reach.sh): the per-feature lab
// tests cover the topologies in CI.
func TestReach(t *testing.T) {
	if os.Getenv("CONNET_REACH") != "1" {
		t.Skip("the reach table: run scripts/reach.sh (sets CONNET_REACH=1)")
	}
	for _, topo := range natlab.Topologies() {
		t.Run(topo.String(), func(t *testing.T) {
			want := topo.ExpectedPath()
			r := measureReach(t, topo, want)
			t.Logf("MEASURE topology=%s outcome=%s expected=%s first_byte_ms=%d direct_ms=%d remote=%s",
				topo, r.outcome, want, r.firstByte.Milliseconds(), r.direct.Milliseconds(), orDash(r.remote))
			if r.outcome != want {
				t.Errorf("%s: outcome %s, expected %s (%v)", topo, r.outcome, want, r.err)
			}
		})
	}
}

// measureReach runs a server, a destination on A serving a small HTTP
// body and a source on B, and reports how the source reached it. A path
// counts as direct only if the status shows one and packets crossed
// between A and B both ways.
func measureReach(t *testing.T, topo natlab.Topology, want natlab.Path) reachResult {
	d := newDeployment(t, topo)
	body := randomBody(t, 64<<10)
	d.serveHTTP(body)
	d.startServer()
	d.lab.ResetPeerTraffic(t)

	start := time.Now()
	d.startDestination("any")
	d.startSource("any")
	wait := reachLateWait
	if want == natlab.PathDirect {
		wait = reachDirectWait
	}
	type pathResult struct {
		remote string
		at     time.Duration
		ok     bool
	}
	pathCh := make(chan pathResult, 1)
	go func() {
		st, _, err := waitStatus(d.lab.B, wait, hasDirect)
		pr := pathResult{at: time.Since(start), ok: err == nil}
		for _, p := range sourcePaths(st) {
			if p.Kind == "direct-outgoing" || p.Kind == "direct-incoming" {
				pr.remote = p.Remote
			}
		}
		pathCh <- pr
	}()

	var r reachResult
	if _, r.err = d.fetchEventually(body, fetchLimit); r.err == nil {
		r.firstByte = time.Since(start)
	}
	pr := <-pathCh
	switch {
	case r.err != nil:
		r.outcome = natlab.PathFail
	case pr.ok && d.lab.PeerTraffic(t).Direct():
		r.outcome, r.direct, r.remote = natlab.PathDirect, pr.at, pr.remote
	default:
		r.outcome = natlab.PathRelay
	}
	return r
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
