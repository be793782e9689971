package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
)

// TestUDPBlocked: A's firewall drops all outbound UDP. The destination on A
// times out on QUIC, falls back to TLS over TCP for the control server and
// the relay, and still carries the tunnel, relayed: A's path is relay-tcp,
// B (with UDP) keeps QUIC and shows relay. No UDP crosses from A to B.
// Once the firewall lets UDP out again, A moves its control connection
// back to QUIC.
func TestUDPBlocked(t *testing.T) {
	d := newDeployment(t, natlab.UDPBlocked)
	body := randomBody(t, 4<<20)
	d.serveHTTP(body)
	d.startServer()
	d.lab.ResetPeerTraffic(t)

	start := time.Now()
	d.write("destination.toml", d.clientConfig("token-a", fmt.Sprintf(`quic-retry = "2s"
[client.destinations.web]
url = "tcp://127.0.0.1:%s"
`, servicePort)))
	d.startClient(d.lab.A, "destination", d.path("destination.toml"))
	d.startSource("any")

	if _, err := d.fetchEventually(body, fetchLimit); err != nil {
		t.Fatal(err)
	}
	firstByte := time.Since(start)
	stB, _, err := waitStatus(d.lab.B, pathLimit, hasRelay)
	if err != nil {
		t.Fatal(err)
	}
	if hasDirect(stB) || stB.Control.Transport != "quic" {
		t.Fatalf("B (UDP allowed): control over %q, paths %+v; want quic and relay only", stB.Control.Transport, sourcePaths(stB))
	}
	stA, _, err := waitStatus(d.lab.A, pathLimit, func(st connet.ClientStatus) bool {
		return slices.Contains(destinationKinds(st), "relay-tcp")
	})
	if err != nil {
		t.Fatal(err)
	}
	if stA.Control.Transport != "tcp" || len(stA.Relays) != 1 || stA.Relays[0].Transport != "tcp" {
		t.Fatalf("A (UDP blocked): control over %q, relays %+v; want both over tcp", stA.Control.Transport, stA.Relays)
	}
	if traffic := d.lab.PeerTraffic(t); traffic.BFromA > 0 {
		t.Fatalf("UDP from A reached B through a firewall that drops it: %s", traffic)
	}
	t.Logf("MEASURE topology=%s outcome=relay first_byte_ms=%d direct_ms=-1 transport=tcp", natlab.UDPBlocked, firstByte.Milliseconds())

	// The firewall lifts: A's QUIC retry gets through and its control
	// connection moves back.
	d.lab.UnblockUDP(t)
	if _, _, err := waitStatus(d.lab.A, pathLimit, func(st connet.ClientStatus) bool {
		return st.Control.Connected && st.Control.Transport == "quic"
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.fetchEventually(body, fetchLimit); err != nil {
		t.Fatalf("after moving back to QUIC: %v", err)
	}
}

// destinationKinds lists the kinds of the paths a destination shows.
func destinationKinds(st connet.ClientStatus) []string {
	var kinds []string
	for _, e := range st.Destinations {
		for _, p := range e.Peers {
			for _, pp := range p.Paths {
				kinds = append(kinds, pp.Kind)
			}
		}
	}
	return kinds
}
