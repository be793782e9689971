package e2e

import (
	"net/netip"
	"testing"

	"github.com/p2pconnet/connet/internal/natlab"
)

// TestDualStackSymmetric: both peers are behind fully-random IPv4 NATs
// (IPv4 alone can only relay, see TestTopologies/BothSymmetric) but have
// routed IPv6 behind stateful firewalls. The control server is IPv4 only,
// so the clients' dual-stack sockets (direct-addr ":19192") reach it over
// IPv4 and announce their global IPv6 addresses as candidates through it;
// the peers must then connect directly over IPv6.
func TestDualStackSymmetric(t *testing.T) {
	d := newDeployment(t, natlab.BothSymmetricV6)
	body := randomBody(t, 1<<20)
	d.serveHTTP(body)
	d.startServer()
	d.lab.ResetPeerTraffic(t)
	d.startDestination("any")
	d.startSource("any")

	if _, err := d.fetchEventually(body, fetchLimit); err != nil {
		t.Fatal(err)
	}
	st, _, err := waitStatus(d.lab.B, pathLimit, hasDirect)
	if err != nil {
		t.Fatal(err)
	}
	var remote netip.AddrPort
	for _, p := range sourcePaths(st) {
		if p.Kind == "direct-outgoing" || p.Kind == "direct-incoming" {
			remote, err = netip.ParseAddrPort(p.Remote)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if remote.Addr() != d.lab.A.Addr6 {
		t.Fatalf("direct path to %v, want A's IPv6 address %v", remote, d.lab.A.Addr6)
	}
	// One dual-stack socket: IPv6 to the peer, IPv4 to the server.
	if st.DirectAddr != "[::]:19192" {
		t.Fatalf("direct address %q, want the dual-stack [::]:19192", st.DirectAddr)
	}
	if observed, err := netip.ParseAddrPort(st.Control.Observed); err != nil || !observed.Addr().Unmap().Is4() {
		t.Fatalf("the control server saw %q, want an IPv4 address (%v)", st.Control.Observed, err)
	}
	// Judge by the wire too: only IPv6 can cross directly here.
	d.lab.ResetPeerTraffic(t)
	if _, err := d.fetchEventually(body, fetchLimit); err != nil {
		t.Fatal(err)
	}
	if traffic := d.lab.PeerTraffic(t); !traffic.Direct() {
		t.Fatalf("a fetch over the direct path, but no packets crossed between A and B: %s", traffic)
	}
	t.Logf("MEASURE topology=%s outcome=direct remote=%s", d.lab.Topology, remote)
}
