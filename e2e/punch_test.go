package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/natlab"
)

// TestBirthdayPunchWithRelayApart: the birthday punch with control and
// relay run apart (`connet control`, `connet relay`): the control server
// works out the NAT kinds from where it sees each client and where the
// relay, which joined it over the network, says it saw them (signed with
// the relay's stored identity). With route = "direct" only the punch can
// carry the fetch.
func TestBirthdayPunchWithRelayApart(t *testing.T) {
	d, startRelay := splitDeployment(t, natlab.Symmetric)
	startRelay()
	body := randomBody(t, 1<<20)
	d.serveHTTP(body)
	d.startDestination("any")
	d.startSource("direct")
	took, err := d.fetchEventually(body, fetchLimit)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := waitStatus(d.lab.B, pathLimit, hasDirect); err != nil {
		t.Fatal(err)
	}
	checkNAT(t, d)
	t.Logf("route direct through a symmetric NAT, relay apart: first correct fetch after %v", took)
}

// TestBirthdayPunchDisabled: with birthday-punch = "disabled" on the
// source (behind the cone: the side that would spray probes), a symmetric
// NAT facing it stays relayed and neither client punches; the binary
// applies the key.
func TestBirthdayPunchDisabled(t *testing.T) {
	d := newDeployment(t, natlab.Symmetric)
	body := randomBody(t, 1<<20)
	d.serveHTTP(body)
	d.startServer()
	dst := d.startDestination("any")
	d.write("source.toml", d.clientConfig("token-b", fmt.Sprintf(`birthday-punch = "disabled"
[client.sources.web]
url = "tcp://127.0.0.1:%s"
`, sourcePort)))
	src := d.startClient(d.lab.B, "source", d.path("source.toml"))
	if _, err := d.fetchEventually(body, fetchLimit); err != nil {
		t.Fatal(err)
	}
	if _, _, err := waitStatus(d.lab.B, pathLimit, hasRelay); err != nil {
		t.Fatal(err)
	}
	checkNAT(t, d)
	// A punch starts half a second after the peers learn of each other,
	// and found a path within 2 s in every run with it on.
	time.Sleep(5 * time.Second)
	st, _, err := waitStatus(d.lab.B, pathLimit, hasRelay)
	if err != nil {
		t.Fatal(err)
	}
	if hasDirect(st) {
		t.Fatalf("a direct path through a symmetric NAT with birthday punching off: %+v", sourcePaths(st))
	}
	logs := dst.Output() + src.Output()
	if n := punchProbes(logs); n != 0 || strings.Contains(logs, "punching through a symmetric NAT") {
		t.Fatalf("a client punched (%d probes) with birthday punching off on the source", n)
	}
	if !strings.Contains(src.Output(), "birthday punching through symmetric NATs is off") {
		t.Fatal("the source did not say that birthday punching is off")
	}
}
