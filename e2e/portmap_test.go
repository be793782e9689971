package e2e

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
)

// mapLimit bounds the wait for a client's port mapping: UPnP's search
// alone takes 1.5 s, and the default order tries it last.
const mapLimit = 15 * time.Second

// TestPortMapping runs a destination on A behind a symmetric NAT whose
// router maps ports, and a source on B behind a cone NAT: only the
// mapping lets B in, and the direct path must go through it. Each
// protocol is forced in turn, then the default order runs against
// gateways that speak all three, only PCP, and only UPnP.
func TestPortMapping(t *testing.T) {
	for _, tc := range []struct {
		name, mode string
		// gateway, when set, replaces the topology's gateway (which
		// speaks every protocol) with one on a plain Symmetric lab.
		gateway *natlab.GatewayConfig
		want    string // the protocol that must map the port
	}{
		{name: "nat-pmp", mode: "nat-pmp", want: "nat-pmp"},
		{name: "pcp", mode: "pcp", want: "pcp"},
		{name: "upnp", mode: "upnp", want: "upnp"},
		{name: "system", mode: "system", want: "nat-pmp"},
		{name: "dial", mode: "dial", want: "nat-pmp"},
		{name: "system-pcp-gateway", mode: "system", gateway: &natlab.GatewayConfig{PCP: true, MaxLifetime: 8 * time.Second}, want: "pcp"},
		{name: "system-upnp-gateway", mode: "system", gateway: &natlab.GatewayConfig{UPnP: true, MaxLifetime: 8 * time.Second}, want: "upnp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo := natlab.SymmetricPortMap
			if tc.gateway != nil {
				topo = natlab.Symmetric
			}
			d := newDeployment(t, topo)
			if tc.gateway != nil {
				d.lab.Gateway = d.lab.StartGateway(t, d.lab.A, *tc.gateway)
			}
			d.natPMP["token-a"] = tc.mode
			body := randomBody(t, 1<<20)
			d.serveHTTP(body)
			d.startServer()
			d.lab.ResetPeerTraffic(t)

			dst := d.startDestination("any")
			mapped := waitMapped(t, d, tc.want)
			start := time.Now()
			d.startSource("any")
			firstByte, direct := checkDirectVia(t, d, body, mapped, start)
			checkDeletedAtStop(t, d, dst, d.lab.Gateway)
			// Variants of the topology's row, which TestPortMappingStartTogether
			// measures; times here are from the source's start.
			t.Logf("MEASURE topology=SymmetricPortMap/%s outcome=direct first_byte_ms=%d direct_ms=%d portmap=%s mode=%s mapped=%s",
				tc.name, firstByte.Milliseconds(), direct.Milliseconds(), tc.want, tc.mode, mapped)
		})
	}
}

// waitMapped waits for the destination on A to show its port mapping by
// protocol want, and returns the mapped address, which must be on A's
// public address.
func waitMapped(t *testing.T, d *deployment, want string) netip.AddrPort {
	t.Helper()
	st, _, err := waitStatus(d.lab.A, mapLimit, func(st connet.ClientStatus) bool {
		return st.PortMapping != nil && st.PortMapping.External != ""
	})
	if err != nil {
		t.Fatal(err)
	}
	pm := st.PortMapping
	mapped, err := netip.ParseAddrPort(pm.External)
	if err != nil {
		t.Fatal(err)
	}
	if pm.Protocol != want || mapped.Addr() != d.lab.A.PublicAddr || pm.Gateway != d.lab.A.NAT.Gateway.String() ||
		pm.Expires == nil || pm.Expires.Before(time.Now()) {
		t.Fatalf("port mapping %+v, want %s on %s by the gateway %s, expiring later", pm, want, d.lab.A.PublicAddr, d.lab.A.NAT.Gateway)
	}
	t.Logf("destination's port mapping: %+v (expires %s)", *pm, pm.Expires.Format(time.RFC3339))
	return mapped
}

// checkDirectVia fetches through the tunnel and checks that B's direct
// path to A goes to the mapped address, with packets crossing directly
// both ways; it returns the times to the first byte and to the direct
// path since start.
func checkDirectVia(t *testing.T, d *deployment, body []byte, mapped netip.AddrPort, start time.Time) (firstByte, direct time.Duration) {
	t.Helper()
	if _, err := d.fetchEventually(body, fetchLimit); err != nil {
		t.Fatal(err)
	}
	firstByte = time.Since(start)
	st, _, err := waitStatus(d.lab.B, pathLimit, func(st connet.ClientStatus) bool { return hasDirectTo(st, mapped) })
	if err != nil {
		t.Fatalf("no direct path to the mapped %s: %v", mapped, err)
	}
	direct = time.Since(start)
	if _, err := d.fetchEventually(body, fetchLimit); err != nil {
		t.Fatal(err)
	}
	if traffic := d.lab.PeerTraffic(t); !traffic.Direct() {
		t.Fatalf("status shows a direct path (%+v) but no packets crossed between A and B: %s", sourcePaths(st), traffic)
	}
	return firstByte, direct
}

func hasDirectTo(st connet.ClientStatus, remote netip.AddrPort) bool {
	for _, p := range sourcePaths(st) {
		if (p.Kind == "direct-outgoing" || p.Kind == "direct-incoming") && p.Remote == remote.String() {
			return true
		}
	}
	return false
}

// checkDeletedAtStop stops the destination on A and checks that it
// deleted its mapping on the way out: the mapping is gone before it could
// have expired.
func checkDeletedAtStop(t *testing.T, d *deployment, dst *natlab.Proc, g *natlab.Gateway) {
	t.Helper()
	gm := g.WaitMapping(t, netip.AddrPortFrom(d.lab.A.Addr, 19192), mapLimit)
	if err := dst.Stop(); err != nil {
		t.Fatalf("destination: %v", err)
	}
	for _, m := range g.Mappings() {
		if m.Internal == gm.Internal {
			t.Fatalf("mapping %+v left on the gateway after the client stopped", m)
		}
	}
	if time.Now().After(gm.Expires) {
		t.Logf("the mapping could have expired by now (%v): its deletion is not proven", gm.Expires)
	}
}

// TestPortMappingStartTogether starts both clients at once, as
// TestTopologies does, with the default nat-pmp: the destination's
// mapping is announced while the source may already be dialing its other
// candidates, and the source must dial the new one at once. Its MEASURE
// line is the topology's row in the reach table, timed from the clients'
// start.
func TestPortMappingStartTogether(t *testing.T) {
	d := newDeployment(t, natlab.SymmetricPortMap)
	body := randomBody(t, 1<<20)
	d.serveHTTP(body)
	d.startServer()
	d.lab.ResetPeerTraffic(t)
	start := time.Now()
	d.startDestination("any")
	d.startSource("any")
	mapped := waitMapped(t, d, "nat-pmp")
	firstByte, direct := checkDirectVia(t, d, body, mapped, start)
	t.Logf("MEASURE topology=%s outcome=direct first_byte_ms=%d direct_ms=%d portmap=nat-pmp mapped=%s",
		d.lab.Topology, firstByte.Milliseconds(), direct.Milliseconds(), mapped)
}

// TestPortMappingGatewayRestart restarts A's gateway under a direct path
// through its mapping: the client sees the epoch go back, maps the port
// again, and new connections still go direct through the mapping.
func TestPortMappingGatewayRestart(t *testing.T) {
	d := newDeployment(t, natlab.SymmetricPortMap)
	body := randomBody(t, 1<<20)
	d.serveHTTP(body)
	d.startServer()
	d.lab.ResetPeerTraffic(t)
	dst := d.startDestination("any")
	mapped := waitMapped(t, d, "nat-pmp")
	d.startSource("any")
	checkDirectVia(t, d, body, mapped, time.Now())

	internal := netip.AddrPortFrom(d.lab.A.Addr, 19192)
	restarted := time.Now()
	d.lab.Gateway.Restart(t)
	gm := d.lab.Gateway.WaitMapping(t, internal, mapLimit)
	back := time.Since(restarted)
	if gm.External != mapped {
		t.Fatalf("after the restart the gateway maps %s, want %s again", gm.External, mapped)
	}
	waitLogLine(t, dst.LogPath, "gateway restarted")
	d.lab.ResetPeerTraffic(t)
	firstByte, direct := checkDirectVia(t, d, body, mapped, time.Now())
	t.Logf("MEASURE portmap_gateway_restart mapping_back_ms=%d first_byte_ms=%d direct_ms=%d", back.Milliseconds(), firstByte.Milliseconds(), direct.Milliseconds())
}

// TestPortMappingAbsent runs the default nat-pmp against a router that
// maps nothing (A's symmetric NAT, no gateway): the tunnel comes up all
// the same, through the relay, and the client says once why there is no
// mapping. The same with nat-pmp disabled gives the time to compare.
func TestPortMappingAbsent(t *testing.T) {
	for _, mode := range []string{"system", "disabled"} {
		t.Run(mode, func(t *testing.T) {
			d := newDeployment(t, natlab.Symmetric)
			d.natPMP["token-a"] = mode
			body := randomBody(t, 1<<20)
			d.serveHTTP(body)
			d.startServer()
			start := time.Now()
			dst := d.startDestination("any")
			d.startSource("any")
			if _, err := d.fetchEventually(body, fetchLimit); err != nil {
				t.Fatal(err)
			}
			firstByte := time.Since(start)
			st, _, err := waitStatus(d.lab.A, pathLimit, func(st connet.ClientStatus) bool { return st.Control.Connected })
			if err != nil {
				t.Fatal(err)
			}
			if mode == "disabled" {
				if st.PortMapping != nil {
					t.Fatalf("port mapping %+v with nat-pmp disabled", st.PortMapping)
				}
			} else {
				waitLogLine(t, dst.LogPath, "no port mapping")
				if pm := st.PortMapping; pm == nil || pm.Mode != "system" || pm.Protocol != "" || pm.External != "" {
					t.Fatalf("port mapping %+v on a router without one", pm)
				}
			}
			// Relayed today; other ways through a symmetric NAT (hole
			// punching from many ports) may make it direct: say which.
			outcome, directMs := "relay", int64(0)
			if bst, err := status(context.Background(), d.lab.B); err == nil && hasDirect(bst) {
				outcome, directMs = "direct", time.Since(start).Milliseconds()
			}
			t.Logf("MEASURE topology=Symmetric/no-gateway-nat-pmp-%s outcome=%s first_byte_ms=%d direct_ms=%d portmap=none",
				mode, outcome, firstByte.Milliseconds(), directMs)
		})
	}
}

// waitLogLine waits until the log file at path holds want.
func waitLogLine(t *testing.T, path, want string) {
	t.Helper()
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), want) {
			return
		}
		if time.Since(start) > mapLimit {
			t.Fatalf("no %q in %s within %v", want, path, mapLimit)
		}
	}
}

// TestPortMappingHostileGateway runs the destination on A against a
// gateway whose every answer is one no gateway can grant: external port 0
// (NAT-PMP, PCP) or the external address 127.0.0.1 (all three). The client
// refuses each, says once why it has no mapping, announces none (a port 0
// among its candidates would make the control server end its session, at
// every reconnect), stays connected, and the tunnel works all the same.
func TestPortMappingHostileGateway(t *testing.T) {
	loopback := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		name, mode string
		gateway    natlab.GatewayConfig
	}{
		{"nat-pmp-port-0", "nat-pmp", natlab.GatewayConfig{NATPMP: true, Misbehave: natlab.GatewayMisbehavior{ZeroPort: true}}},
		{"pcp-port-0", "pcp", natlab.GatewayConfig{PCP: true, Misbehave: natlab.GatewayMisbehavior{ZeroPort: true}}},
		{"upnp-loopback", "upnp", natlab.GatewayConfig{UPnP: true, Misbehave: natlab.GatewayMisbehavior{External: loopback}}},
		{"system-all-lie", "system", natlab.GatewayConfig{NATPMP: true, PCP: true, UPnP: true,
			Misbehave: natlab.GatewayMisbehavior{ZeroPort: true, External: loopback}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeployment(t, natlab.Symmetric)
			d.lab.Gateway = d.lab.StartGateway(t, d.lab.A, tc.gateway)
			d.natPMP["token-a"] = tc.mode
			body := randomBody(t, 1<<20)
			d.serveHTTP(body)
			d.startServer()
			dst := d.startDestination("any")
			d.startSource("any")
			waitLogLine(t, dst.LogPath, "no port mapping")
			if _, err := d.fetchEventually(body, fetchLimit); err != nil {
				t.Fatal(err)
			}
			st, err := status(context.Background(), d.lab.A)
			if err != nil {
				t.Fatal(err)
			}
			if pm := st.PortMapping; pm == nil || pm.External != "" || !st.Control.Connected {
				t.Fatalf("port mapping %+v, control %+v: want no mapping and a connected client", pm, st.Control)
			}
			log, err := os.ReadFile(dst.LogPath)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(log), "connected to control server"); n != 1 {
				t.Fatalf("the destination connected to the control server %d times, want once", n)
			}
			if !strings.Contains(string(log), "gateway answer refused") {
				t.Fatal("the log does not say the gateway's answer was refused")
			}
		})
	}
}
