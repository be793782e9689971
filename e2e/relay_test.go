package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
)

// TestForcedRelay: with route = "relay" on the source, traffic goes
// through the relay even where a direct path would work, and no packet is
// even sent directly between the peers.
func TestForcedRelay(t *testing.T) {
	d := newDeployment(t, natlab.Cone)
	body := randomBody(t, 1<<20)
	d.serveHTTP(body)
	d.startServer()
	d.lab.ResetPeerTraffic(t)
	d.startDestination("any")
	d.startSource("relay")
	if _, err := d.fetchEventually(body, fetchLimit); err != nil {
		t.Fatal(err)
	}
	st, _, err := waitStatus(d.lab.B, pathLimit, hasRelay)
	if err != nil {
		t.Fatal(err)
	}
	if hasDirect(st) {
		t.Fatalf("route relay, yet a direct path: %+v", sourcePaths(st))
	}
	if traffic := d.lab.PeerTraffic(t); traffic.AToB != 0 || traffic.BToA != 0 {
		t.Fatalf("route relay, yet packets were sent between the peers: %s", traffic)
	}
}

// TestDirectOnlyBehindSymmetricNAT: route = "direct" where no direct path
// exists (two symmetric NATs) fails, and the source's status says why.
func TestDirectOnlyBehindSymmetricNAT(t *testing.T) {
	d := newDeployment(t, natlab.BothSymmetric)
	d.serveHTTP([]byte("unreachable"))
	d.startServer()
	d.startDestination("any")
	d.startSource("direct")
	// The control server did its part: the source knows the destination.
	if _, _, err := waitStatus(d.lab.B, pathLimit, func(st connet.ClientStatus) bool {
		return len(st.Sources) == 1 && len(st.Sources[0].Peers) == 1
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := d.fetch(ctx); err == nil {
		t.Fatal("a fetch succeeded with route direct behind a symmetric NAT")
	}
	st, _, err := waitStatus(d.lab.B, pathLimit, func(st connet.ClientStatus) bool {
		return st.Sources[0].LastError != ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if hasRelay(st) || hasDirect(st) {
		t.Fatalf("route direct behind a symmetric NAT shows a path: %+v", sourcePaths(st))
	}
	if st.Sources[0].LastReason != "peer-unreachable" || !strings.Contains(st.Sources[0].LastError, "destination peer unreachable") {
		t.Fatalf("status error %q (reason %q) does not say the destination is unreachable", st.Sources[0].LastError, st.Sources[0].LastReason)
	}
	t.Logf("source status error: %s", st.Sources[0].LastError)
}

// TestDirectOnlyThroughSymmetricNAT: route = "direct" with the destination
// behind a symmetric NAT and the source behind a cone works: no relay may
// carry it, so the tunnel works only once the birthday punch made a
// direct path, which the packet counters confirm.
func TestDirectOnlyThroughSymmetricNAT(t *testing.T) {
	d := newDeployment(t, natlab.Symmetric)
	body := randomBody(t, 1<<20)
	d.serveHTTP(body)
	d.startServer()
	d.lab.ResetPeerTraffic(t)
	d.startDestination("any")
	d.startSource("direct")
	took, err := d.fetchEventually(body, fetchLimit)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := waitStatus(d.lab.B, pathLimit, hasDirect)
	if err != nil {
		t.Fatal(err)
	}
	if hasRelay(st) {
		t.Fatalf("route direct, yet a relay path: %+v", sourcePaths(st))
	}
	if traffic := d.lab.PeerTraffic(t); !traffic.Direct() {
		t.Fatalf("a fetch with route direct worked, but no packets crossed between A and B: %s", traffic)
	}
	t.Logf("route direct through a symmetric NAT: first correct fetch after %v", took)
}

// splitDeployment runs `connet control` on the server's first address and
// `connet relay` on its second, joined with a relay token.
func splitDeployment(t *testing.T, topo natlab.Topology) (*deployment, func() *natlab.Proc) {
	d := newDeployment(t, topo)
	srv, relayAddr := d.lab.Server.Addrs[0], d.lab.Server.Addrs[1]
	d.write("control.toml", fmt.Sprintf(`
log-level = "debug"
[control]
clients-tokens = ["token-a", "token-b"]
relays-tokens = ["relay-token"]
store-dir = %[1]q
[[control.clients-ingress]]
addr = "%[2]s:%[3]s"
cert-file = %[4]q
key-file = %[5]q
[[control.relays-ingress]]
addr = "%[2]s:19189"
cert-file = %[4]q
key-file = %[5]q
`, filepath.Join(d.dir, "control-store"), srv, controlPort, d.path("cert.pem"), d.path("key.pem")))
	d.write("relay.toml", fmt.Sprintf(`
log-level = "debug"
[relay]
token = "relay-token"
control-addr = "%[1]s:19189"
control-cas-file = %[2]q
store-dir = %[3]q
[[relay.ingress]]
addr = "%[4]s:%[5]s"
hostports = ["%[4]s:%[5]s"]
`, srv, d.path("cert.pem"), filepath.Join(d.dir, "relay-store"), relayAddr, relayPort))
	d.server = d.lab.Server.Start(t, "control", connetBin, "control", "--config", d.path("control.toml"))
	startRelay := func() *natlab.Proc {
		return d.lab.Server.Start(t, "relay", connetBin, "relay", "--config", d.path("relay.toml"))
	}
	return d, startRelay
}

// TestSplitDeploymentAndRelayRestart runs control and relay apart, behind
// two symmetric NATs so only the relay can carry the traffic, then restarts
// the relay with its store and measures how soon tunnels work again.
func TestSplitDeploymentAndRelayRestart(t *testing.T) {
	d, startRelay := splitDeployment(t, natlab.BothSymmetric)
	relay := startRelay()
	body := randomBody(t, 1<<20)
	d.serveHTTP(body)
	d.startDestination("any")
	d.startSource("any")
	if _, err := d.fetchEventually(body, fetchLimit); err != nil {
		t.Fatal(err)
	}
	st, _, err := waitStatus(d.lab.B, pathLimit, hasRelay)
	if err != nil {
		t.Fatal(err)
	}
	want := d.lab.Server.Addrs[1].String() + ":" + relayPort
	if got := sourcePaths(st)[0].Remote; got != want {
		t.Fatalf("relayed through %s, want the relay at %s", got, want)
	}

	if err := relay.Stop(); err != nil {
		t.Logf("relay exit: %v", err)
	}
	startRelay()
	back, err := d.fetchEventually(body, fetchLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURE relay_restart_recovery_ms=%d", back.Milliseconds())
}

// TestServerRestartRelayed restarts a combined control+relay server with
// its store under relayed tunnels and measures how soon they work again.
func TestServerRestartRelayed(t *testing.T) {
	d := newDeployment(t, natlab.BothSymmetric)
	body := randomBody(t, 1<<20)
	d.serveHTTP(body)
	d.startServer()
	d.startDestination("any")
	d.startSource("any")
	if _, err := d.fetchEventually(body, fetchLimit); err != nil {
		t.Fatal(err)
	}
	if err := d.server.Stop(); err != nil {
		t.Logf("server exit: %v", err)
	}
	d.startServer()
	back, err := d.fetchEventually(body, fetchLimit)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := waitStatus(d.lab.B, pathLimit, hasRelay); err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURE server_restart_recovery_ms=%d", back.Milliseconds())
}

// TestEncryptedRelay relays through the server with end-to-end encryption
// set in the config files: dhxcp for the client defaults, tls for one
// endpoint pair, both behind symmetric NATs.
func TestEncryptedRelay(t *testing.T) {
	d := newDeployment(t, natlab.BothSymmetric)
	body := randomBody(t, 1<<20)
	d.serveHTTP(body)
	d.startServer()
	d.write("destination.toml", d.clientConfig("token-a", fmt.Sprintf(`relay-encryptions = ["dhxcp"]
[client.destinations.web]
url = "tcp://127.0.0.1:%[1]s"
[client.destinations.web-tls]
url = "tcp://127.0.0.1:%[1]s"
relay-encryptions = ["tls"]
`, servicePort)))
	d.write("source.toml", d.clientConfig("token-b", fmt.Sprintf(`relay-encryptions = ["none", "dhxcp"]
[client.sources.web]
url = "tcp://127.0.0.1:%s"
[client.sources.web-tls]
url = "tcp://127.0.0.1:%s"
relay-encryptions = ["tls", "none"]
`, sourcePort, relayedSourcePort)))
	d.startClient(d.lab.A, "destination", d.path("destination.toml"))
	d.startClient(d.lab.B, "source", d.path("source.toml"))
	if _, err := d.fetchEventually(body, fetchLimit); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := d.lab.B.HTTPGet(ctx, "http://127.0.0.1:"+relayedSourcePort+"/")
	if err != nil || string(got) != string(body) {
		t.Fatalf("fetch through the tls endpoint: %d bytes, %v", len(got), err)
	}
}
