package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
	"github.com/p2pconnet/connet/internal/tuning"
)

// lbSource is one source client on B with its own load balancing.
type lbSource struct {
	name   string
	lb     string // config lines
	port   int
	status string
}

// TestLoadBalancer runs three destinations of one name on A, each in front
// of a service that answers with its own id, and sources on B with
// different lb options, all from config files and the real binary. Then it
// kills one destination client: sources that retry lose no request, a
// source that never retries loses the ones that fall on the dead peer
// while it still looks alive.
func TestLoadBalancer(t *testing.T) {
	d := newDeployment(t, natlab.Public)
	d.startServer()
	procs := map[string]*natlab.Proc{}
	for i := range 3 {
		id := fmt.Sprintf("dst-%d", i)
		port := 3001 + i
		serveText(t, d.lab.A, fmt.Sprintf("127.0.0.1:%d", port), id)
		procs[id] = d.startDestinationAt(id, 19192+2*i, port)
	}

	// dial-timeout bounds each attempt, so a retry reaches the next peer
	// long before the dead one goes stale.
	sources := []lbSource{
		{name: "rr-never", lb: `lb-policy = "round-robin"`},
		{name: "random", lb: `lb-policy = "random"`},
		{name: "rr-count", lb: "lb-policy = \"round-robin\"\nlb-retry = \"count\""},
		{name: "rr-timed", lb: "lb-policy = \"round-robin\"\nlb-retry = \"timed\"\nlb-retry-max = 3000"},
		{name: "rr-all", lb: "lb-policy = \"round-robin\"\nlb-retry = \"all\""},
	}
	for i := range sources {
		s := &sources[i]
		s.port = 8001 + i
		s.status = fmt.Sprintf("127.0.0.1:%d", 19183+i)
		d.write(s.name+".toml", fmt.Sprintf(`
[client]
token = "token-b"
server-addr = "%s:%s"
server-cas-file = %q
direct-addr = ":%d"
status-addr = %q
nat-pmp = "disabled"
[client.sources.web]
url = "tcp://127.0.0.1:%d"
dial-timeout = "500ms"
%s
`, d.lab.Server.Addr, controlPort, d.path("cert.pem"), 19200+2*i, s.status, s.port, s.lb))
		d.startClient(d.lab.B, s.name, d.path(s.name+".toml"))
	}
	for _, s := range sources {
		waitPeers(t, d.lab.B, s.status, 3)
	}

	fetch := func(s lbSource) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		body, err := d.lab.B.HTTPGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/", s.port))
		return string(body), err
	}

	// Round-robin cycles through all three.
	var ids []string
	for range 6 {
		id, err := fetch(sources[0])
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if s := slices.Sorted(slices.Values(ids[:3])); !slices.Equal(s, []string{"dst-0", "dst-1", "dst-2"}) || !slices.Equal(ids[:3], ids[3:]) {
		t.Fatalf("round-robin answers %v, want the three in a repeating cycle", ids)
	}
	// Random reaches all three.
	seen := map[string]bool{}
	for i := 0; i < 60 && len(seen) < 3; i++ {
		id, err := fetch(sources[1])
		if err != nil {
			t.Fatal(err)
		}
		seen[id] = true
	}
	if len(seen) != 3 {
		t.Fatalf("60 random fetches reached only %v", seen)
	}

	if err := procs["dst-1"].Kill(); err != nil {
		t.Logf("kill: %v", err)
	}
	killed := time.Now()
	// Never retrying: within a cycle one fetch falls on the dead peer.
	failed := 0
	for range 3 {
		if id, err := fetch(sources[0]); err != nil {
			failed++
		} else if id == "dst-1" {
			t.Fatal("the killed destination answered")
		}
	}
	// Once the dead peer's paths go stale it is tried last, and then even
	// this source loses nothing; only a very slow machine gets there first.
	if failed == 0 && time.Since(killed) < tuning.StaleAfter {
		t.Fatal("a source that never retries lost no fetch to the killed destination")
	}
	t.Logf("never: %d of 3 fetches failed", failed)
	for _, s := range sources[2:] {
		for i := range 6 {
			id, err := fetch(s)
			if err != nil {
				t.Fatalf("%s: fetch %d failed although it retries: %v", s.name, i, err)
			}
			if id == "dst-1" {
				t.Fatalf("%s: the killed destination answered", s.name)
			}
		}
	}
}

// waitPeers waits until the client whose status is at addr on h shows n
// destination peers, each with a path.
func waitPeers(t *testing.T, h *natlab.Host, addr string, n int) {
	t.Helper()
	deadline := time.Now().Add(pathLimit)
	var last connet.ClientStatus
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		body, err := h.HTTPGet(ctx, "http://"+addr+"/")
		cancel()
		if err == nil && json.Unmarshal(body, &last) == nil && len(last.Sources) == 1 {
			ready := 0
			for _, p := range last.Sources[0].Peers {
				if len(p.Paths) > 0 {
					ready++
				}
			}
			if ready == n {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("source at %s did not reach %d destinations: %+v", addr, n, last.Sources)
}
