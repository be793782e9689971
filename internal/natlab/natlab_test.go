package natlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain lets the test binary double as a helper process that the lab
// runs inside a namespace (see helperMain).
// helperMain "udpecho ADDR" serves the probe echo protocol on ADDR for at
// most a minute.
func helperMain(mode, addr string) int {
	if mode != "udpecho" {
		fmt.Fprintf(os.Stderr, "unknown helper %q\n", mode)
		return 2
	}
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("listening %s\n", pc.LocalAddr())
	go echo(pc.(*net.UDPConn))
	time.Sleep(time.Minute)
	return 0
}

func TestTopologies(t *testing.T) {
	Require(t)
	for _, topo := range Topologies() {
		t.Run(topo.String(), func(t *testing.T) {
			t.Parallel()
			l := New(t, topo)
			l.VerifyNATs(t)
			if t.Failed() {
				return
			}
			if topo == UDPBlocked {
				// VerifyNATs saw A's UDP dropped; TCP still gets out.
				t.Run("HTTP", func(t *testing.T) { testHTTP(t, l) })
				return
			}
			t.Run("ServerUDP", func(t *testing.T) { testServerUDP(t, l) })
			t.Run("HolePunch", func(t *testing.T) { testHolePunch(t, l) })
			t.Run("HTTP", func(t *testing.T) { testHTTP(t, l) })
			if topo.IPv6() {
				t.Run("HolePunch6", func(t *testing.T) { testHolePunch6(t, l) })
			}
			if topo.UDPTimeout() > 0 {
				t.Run("ShortUDPTimeout", func(t *testing.T) { testShortUDPTimeout(t, l) })
			}
		})
	}
}

// testServerUDP checks that A and B reach both server addresses over UDP
// and that the server sees them at their public addresses.
func testServerUDP(t *testing.T, l *Lab) {
	srv, err := startEchoServers(l.Server)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	for _, h := range []*Host{l.A, l.B} {
		c := listenUDP(t, h)
		for _, to := range []netip.AddrPort{srv.addr(s1P), srv.addr(s2P)} {
			seen, err := query(c, to)
			if err != nil {
				t.Fatalf("%s → %v: %v", h.Role, to, err)
			}
			if seen.Addr() != h.PublicAddr {
				t.Errorf("%s → %v: server saw %v, want address %v", h.Role, to, seen, h.PublicAddr)
			}
		}
	}
}

// testHolePunch first has B send to A's server-observed mapping before A
// has sent anything to B: the packet must be dropped by A's NAT (and
// arrive when A is public), and must not disturb A's mapping. Then A and B
// send to each other's mappings at the same time, as connet clients do,
// which must work exactly where the NATs allow it, as the peer traffic
// counters confirm.
func testHolePunch(t *testing.T, l *Lab) {
	srv, err := startEchoServers(l.Server)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	a, b := listenUDP(t, l.A), listenUDP(t, l.B)
	ma, err := query(a, srv.addr(s1P))
	if err != nil {
		t.Fatal(err)
	}
	mb, err := query(b, srv.addr(s1P))
	if err != nil {
		t.Fatal(err)
	}

	l.ResetPeerTraffic(t)
	got := exchange(t, b, ma, a)
	if want := l.A.NAT == nil; got != want {
		t.Errorf("unsolicited B → A's mapping %v arrived: %v, want %v", ma, got, want)
	}
	if traffic := l.ResetPeerTraffic(t); traffic.BToA == 0 || (traffic.AFromB > 0) != got {
		t.Errorf("unsolicited B → A: peer traffic %v", traffic)
	}

	aGot, bGot := punch(t, a, b, mb, ma)
	want := map[Topology]bool{Public: true, Cone: true, DoubleNAT: true,
		ConeForgetful: true, ConeV6: true,
	}[l.Topology]
	traffic := l.PeerTraffic(t)
	t.Logf("punch via public mappings: A got %v, B got %v; %v", aGot, bGot, traffic)
	if aGot != want || bGot != want {
		t.Errorf("punch via public mappings A %v ↔ B %v: A got %v, B got %v; want %v", ma, mb, aGot, bGot, want)
	}
	if traffic.Direct() != want || traffic.AToB == 0 || traffic.BToA == 0 {
		t.Errorf("peer traffic %v: want direct %v and packets sent both ways", traffic, want)
	}
	if l.Topology != SameLAN {
		return
	}
	// Without hairpin NAT, peers on one LAN meet at their LAN addresses.
	l.ResetPeerTraffic(t)
	la := a.LocalAddr().(*net.UDPAddr).AddrPort()
	lb := b.LocalAddr().(*net.UDPAddr).AddrPort()
	aGot, bGot = punch(t, a, b, lb, la)
	traffic = l.PeerTraffic(t)
	if !aGot || !bGot || !traffic.Direct() {
		t.Errorf("LAN punch %v ↔ %v: A got %v, B got %v, traffic %v", la, lb, aGot, bGot, traffic)
	}
}

// testHolePunch6 checks the routed IPv6 of the V6 topologies: A and B have
// global addresses, an unsolicited packet from B to A is dropped by A's
// firewall, and both sending at once gets through, with ports unchanged.
func testHolePunch6(t *testing.T, l *Lab) {
	if !l.A.Addr6.IsValid() || !l.B.Addr6.IsValid() || !l.A.Addr6.IsGlobalUnicast() {
		t.Fatalf("A %v and B %v need global IPv6 addresses", l.A.Addr6, l.B.Addr6)
	}
	listen6 := func(h *Host) *net.UDPConn {
		c, err := h.ListenUDP(netip.AddrPortFrom(h.Addr6, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := listen6(l.A), listen6(l.B)
	la := a.LocalAddr().(*net.UDPAddr).AddrPort()
	lb := b.LocalAddr().(*net.UDPAddr).AddrPort()
	l.ResetPeerTraffic(t)
	if exchange(t, b, la, a) {
		t.Errorf("unsolicited B → A %v over IPv6 got through A's firewall", la)
	}
	aGot, bGot := punch(t, a, b, lb, la)
	traffic := l.PeerTraffic(t)
	if !aGot || !bGot || !traffic.Direct() {
		t.Errorf("IPv6 punch %v ↔ %v: A got %v, B got %v, traffic %v", la, lb, aGot, bGot, traffic)
	}
}

// testShortUDPTimeout checks that the NATs of a forgetful topology keep a
// replied UDP flow for at most its UDPTimeout (the kernel would keep it
// for 120 s), by the time conntrack says the flow has left.
func testShortUDPTimeout(t *testing.T, l *Lab) {
	srv, err := startEchoServers(l.Server)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	c := listenUDP(t, l.A)
	if _, err := query(c, srv.addr(s1P)); err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
	var found bool
	for _, f := range l.UDPFlows(t, l.A.NAT.Router) {
		if !strings.Contains(f.Line, "sport="+port+" ") {
			continue
		}
		found = true
		if f.Expires > l.Topology.UDPTimeout() {
			t.Errorf("flow expires in %v, want at most %v: %s", f.Expires, l.Topology.UDPTimeout(), f.Line)
		}
	}
	if !found {
		t.Fatalf("no conntrack entry for A's port %s in %s", port, l.A.NAT.Router.Name)
	}
}

// testHTTP checks TCP through the NATs with the namespace HTTP client.
func testHTTP(t *testing.T, l *Lab) {
	ln, err := l.Server.ListenTCP(netip.AddrPortFrom(l.Server.Addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RemoteAddr)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, h := range []*Host{l.A, l.B} {
		body, err := h.HTTPGet(ctx, "http://"+ln.Addr().String()+"/")
		if err != nil {
			t.Fatal(err)
		}
		seen, err := netip.ParseAddrPort(string(body))
		if err != nil || seen.Addr() != h.PublicAddr {
			t.Errorf("%s: server saw %q, want address %v (%v)", h.Role, body, h.PublicAddr, err)
		}
	}
}

func listenUDP(t *testing.T, h *Host) *net.UDPConn {
	t.Helper()
	c, err := h.ListenUDP(netip.AddrPortFrom(h.Addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends from `from` to `to` a few times and reports whether one
// of the packets reached rcv.
func exchange(t *testing.T, from *net.UDPConn, to netip.AddrPort, rcv *net.UDPConn) bool {
	t.Helper()
	for range probeTries {
		if _, err := from.WriteToUDPAddrPort([]byte("natlab-test"), to); err != nil {
			t.Fatal(err)
		}
		if received(t, rcv) {
			return true
		}
	}
	return false
}

// punch sends a→toB and b→toA in rounds and reports who received.
func punch(t *testing.T, a, b *net.UDPConn, toB, toA netip.AddrPort) (aGot, bGot bool) {
	t.Helper()
	for range probeTries + 1 {
		if _, err := a.WriteToUDPAddrPort([]byte("natlab-test"), toB); err != nil {
			t.Fatal(err)
		}
		if _, err := b.WriteToUDPAddrPort([]byte("natlab-test"), toA); err != nil {
			t.Fatal(err)
		}
		// Wait on both sockets at once to halve the time a failure takes.
		var got bool
		var wg sync.WaitGroup
		wg.Go(func() { got = received(t, b) })
		aGot = received(t, a) || aGot
		wg.Wait()
		bGot = bGot || got
		if aGot && bGot {
			break
		}
	}
	return aGot, bGot
}

// received reports whether a "natlab-test" packet arrives on c within
// probeWait; other packets are ignored. It may run in any goroutine.
func received(t *testing.T, c *net.UDPConn) bool {
	if err := c.SetReadDeadline(time.Now().Add(probeWait)); err != nil {
		t.Error(err)
		return false
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !isTimeout(err) {
				t.Error(err)
			}
			return false
		}
		if string(buf[:n]) == "natlab-test" {
			return true
		}
	}
}

// TestProcesses runs a real helper process in the server namespace, talks
// to it from behind a NAT, and stops and kills processes.
func TestProcesses(t *testing.T) {
	Require(t)
	l := New(t, Cone)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(l.Server.Addrs[1], 4000)
	cmd := l.Server.Command(exe, addr.String())
	cmd.Env = append(os.Environ(), "NATLAB_HELPER=udpecho")
	p := l.Server.StartCmd(t, "udpecho", cmd)

	c := listenUDP(t, l.A)
	seen, err := query(c, addr) // retries cover the helper's start-up
	for i := 0; err != nil && i < 20; i++ {
		time.Sleep(100 * time.Millisecond)
		seen, err = query(c, addr)
	}
	if err != nil {
		t.Fatalf("helper echo: %v; output:\n%s", err, p.Output())
	}
	if seen.Addr() != l.A.PublicAddr {
		t.Errorf("helper saw %v, want address %v", seen, l.A.PublicAddr)
	}
	if out := p.Output(); !strings.Contains(out, "listening "+addr.String()) {
		t.Errorf("output %q lacks the listening line", out)
	}
	if err := p.Stop(); !p.killedByUs(err) {
		t.Errorf("Stop: %v, want killed by SIGTERM", err)
	}
	select {
	case <-p.Exited():
	default:
		t.Error("Exited not closed after Stop")
	}

	// Kill, and a process that exits on its own.
	k := l.A.Start(t, "sleep", "sleep", "30")
	if err := k.Kill(); !k.killedByUs(err) {
		t.Errorf("Kill: %v", err)
	}
	ip := l.A.Start(t, "ipaddr", "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ip.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if out := ip.Output(); !strings.Contains(out, l.A.Addr.String()+"/24") {
		t.Errorf("ip addr in A's namespace: %q lacks %v", out, l.A.Addr)
	}
}

// TestDo checks that Do switches namespaces and switches back.
func TestDo(t *testing.T) {
	Require(t)
	l := New(t, Public)
	hasAddr := func(a netip.Addr) bool {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(addrs, func(na net.Addr) bool {
			p, err := netip.ParsePrefix(na.String())
			return err == nil && p.Addr() == a
		})
	}
	var inside bool
	if err := l.Server.Do(func() error { inside = hasAddr(l.Server.Addrs[1]); return nil }); err != nil {
		t.Fatal(err)
	}
	if !inside {
		t.Errorf("inside Do: %v not found", l.Server.Addrs[1])
	}
	if hasAddr(l.Server.Addrs[1]) {
		t.Errorf("after Do: %v still visible", l.Server.Addrs[1])
	}
	if _, err := l.A.DialTCP(context.Background(), "localhost:80"); err == nil {
		t.Error("DialTCP accepted a host name")
	}
}

// TestCleanup checks that a lab's namespaces exist while it lives and are
// all gone after its test ends, along with its processes.
func TestCleanup(t *testing.T) {
	Require(t)
	var prefix string
	var p *Proc
	t.Run("lab", func(t *testing.T) {
		l := New(t, DoubleNAT)
		prefix = l.Prefix()
		got, want := listNamespaces(t, prefix), l.Namespaces()
		slices.Sort(want)
		if !slices.Equal(got, want) || len(got) != 7 {
			t.Errorf("namespaces %v, want %v (7)", got, want)
		}
		p = l.A.Start(t, "sleep", "sleep", "30")
	})
	if left := listNamespaces(t, prefix); len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
	select {
	case <-p.Exited():
	default:
		t.Errorf("process %d still running", p.PID())
	}
}

// listNamespaces returns the sorted names with prefix from ip netns list.
func listNamespaces(t *testing.T, prefix string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			names = append(names, f[0])
		}
	}
	slices.Sort(names)
	return names
}
