package simnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

func listen(t *testing.T, h *Host, addr string) *Conn {
	t.Helper()
	pc, err := h.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc.(*Conn)
}

func send(t *testing.T, c *Conn, to netip.AddrPort, msg string) {
	t.Helper()
	if _, err := c.WriteTo([]byte(msg), net.UDPAddrFromAddrPort(to)); err != nil {
		t.Fatal(err)
	}
}

// poll reads what is already queued. Delivery without latency happens
// inside WriteTo, so a datagram that is not queued now was dropped.
func poll(c *Conn) (string, netip.AddrPort, bool) {
	_ = c.SetReadDeadline(time.Now())
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, 1500)
	n, from, err := c.ReadFrom(buf)
	if err != nil {
		return "", netip.AddrPort{}, false
	}
	return string(buf[:n]), from.(*net.UDPAddr).AddrPort(), true
}

func addr(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// observedFrom sends from c to each server and returns the source address
// each one sees: the NAT's external address for that flow.
func observedFrom(t *testing.T, c *Conn, servers ...*Conn) []netip.AddrPort {
	t.Helper()
	var out []netip.AddrPort
	for _, s := range servers {
		send(t, c, s.local, "hello")
		_, from, ok := poll(s)
		if !ok {
			t.Fatalf("server %v got nothing", s.local)
		}
		out = append(out, from)
	}
	return out
}

// TestMapping checks, for each mapping behaviour, which destinations of
// one internal socket share an external port: all of them
// (endpoint-independent), those at the same IP (address-dependent), or
// none (address-and-port-dependent: a symmetric NAT).
func TestMapping(t *testing.T) {
	for _, tc := range []struct {
		mapping     Behaviour
		sameIPPort  bool // server at the same IP, other port: same external port?
		otherIPPort bool // server at another IP: same external port?
	}{
		{EndpointIndependent, true, true},
		{AddressDependent, true, false},
		{AddressAndPortDependent, false, false},
	} {
		t.Run(tc.mapping.String(), func(t *testing.T) {
			n := New()
			defer n.Close()
			nat := n.NAT("198.51.100.1", tc.mapping, EndpointIndependent, 0)
			client := listen(t, nat.Host("10.0.0.2"), ":4000")
			s1 := n.Host("203.0.113.1")
			a, b := listen(t, s1, ":1000"), listen(t, s1, ":2000")
			c := listen(t, n.Host("203.0.113.2"), ":1000")

			seen := observedFrom(t, client, a, b, c)
			for _, s := range seen {
				if s.Addr() != nat.Public() {
					t.Fatalf("source %v, want the NAT's public address", s)
				}
			}
			if got := seen[1] == seen[0]; got != tc.sameIPPort {
				t.Errorf("same IP, other port: external %v vs %v, same=%v want %v", seen[1], seen[0], got, tc.sameIPPort)
			}
			if got := seen[2] == seen[0]; got != tc.otherIPPort {
				t.Errorf("other IP: external %v vs %v, same=%v want %v", seen[2], seen[0], got, tc.otherIPPort)
			}
			// A mapping is stable: the same flow again keeps its port.
			if again := observedFrom(t, client, a); again[0] != seen[0] {
				t.Errorf("same flow remapped: %v then %v", seen[0], again[0])
			}
		})
	}
}

// TestFiltering checks, for each filtering behaviour, which remotes may
// send to a mapping the private host opened by sending to one server:
// anyone (endpoint-independent), that server's IP (address-dependent), or
// that exact IP:port (address-and-port-dependent).
func TestFiltering(t *testing.T) {
	for _, tc := range []struct {
		filtering   Behaviour
		sameIPOther bool // the server's IP, another port
		otherIP     bool // another IP
	}{
		{EndpointIndependent, true, true},
		{AddressDependent, true, false},
		{AddressAndPortDependent, false, false},
	} {
		t.Run(tc.filtering.String(), func(t *testing.T) {
			n := New()
			defer n.Close()
			nat := n.NAT("198.51.100.1", EndpointIndependent, tc.filtering, 0)
			client := listen(t, nat.Host("10.0.0.2"), ":4000")
			s1 := n.Host("203.0.113.1")
			server, sameIP := listen(t, s1, ":1000"), listen(t, s1, ":2000")
			other := listen(t, n.Host("203.0.113.2"), ":1000")

			// Unsolicited: no mapping yet, so nothing gets in.
			send(t, other, addr("198.51.100.1:40000"), "early")
			if _, _, ok := poll(client); ok {
				t.Fatal("a datagram reached the private host before it sent anything")
			}

			ext := observedFrom(t, client, server)[0]
			for _, probe := range []struct {
				name string
				from *Conn
				want bool
			}{
				{"the server itself", server, true},
				{"the server's IP, another port", sameIP, tc.sameIPOther},
				{"another IP", other, tc.otherIP},
			} {
				send(t, probe.from, ext, "probe")
				msg, from, ok := poll(client)
				if ok != probe.want {
					t.Errorf("%s: delivered=%v, want %v", probe.name, ok, probe.want)
				}
				if ok && (msg != "probe" || from != probe.from.local) {
					t.Errorf("%s: got %q from %v", probe.name, msg, from)
				}
			}
			wantFiltered := uint64(0)
			if !tc.sameIPOther {
				wantFiltered++
			}
			if !tc.otherIP {
				wantFiltered++
			}
			if got := n.Stats().Filtered; got != wantFiltered {
				t.Errorf("Filtered = %d, want %d", got, wantFiltered)
			}
		})
	}
}

// TestLAN: hosts behind one NAT reach each other by private address,
// untranslated; the internet cannot reach a private address at all.
func TestLAN(t *testing.T) {
	n := New()
	defer n.Close()
	nat := n.NAT("198.51.100.1", AddressAndPortDependent, AddressAndPortDependent, 0)
	a := listen(t, nat.Host("10.0.0.2"), ":1")
	b := listen(t, nat.Host("10.0.0.3"), ":2")
	send(t, a, b.local, "hi")
	if _, from, ok := poll(b); !ok || from != a.local {
		t.Fatalf("LAN datagram: ok=%v from %v", ok, from)
	}
	pub := listen(t, n.Host("203.0.113.1"), ":1")
	send(t, pub, a.local, "hi")
	if _, _, ok := poll(a); ok {
		t.Fatal("the internet reached a private address")
	}
	if n.Stats().NoRoute != 1 {
		t.Fatalf("stats %+v, want one NoRoute", n.Stats())
	}
}

// TestConnSemantics covers the net.PacketConn contract quic-go relies on:
// deadlines time out with os.ErrDeadlineExceeded, Close wakes a blocked
// read with net.ErrClosed, the port is free again after Close, and a full
// queue drops rather than blocks the sender.
func TestConnSemantics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New()
		defer n.Close()
		h := n.Host("203.0.113.1")
		c := listen(t, h, "0.0.0.0:0")
		if got := c.LocalAddr().String(); got != "203.0.113.1:50000" {
			t.Fatalf("LocalAddr %s", got)
		}
		if _, err := h.ListenPacket(context.Background(), "udp", ":50000"); err == nil {
			t.Fatal("bound a port twice")
		}

		start := time.Now()
		_ = c.SetReadDeadline(start.Add(3 * time.Second))
		_, _, err := c.ReadFrom(make([]byte, 10))
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != 3*time.Second {
			t.Fatalf("deadline: %v after %v", err, time.Since(start))
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("deadline error %v is not a net.Error timeout", err)
		}
		_ = c.SetReadDeadline(time.Time{})

		// A deadline set while a read blocks applies to that read.
		done := make(chan error)
		go func() {
			_, _, err := c.ReadFrom(make([]byte, 10))
			done <- err
		}()
		synctest.Wait()
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("deadline set during a read: %v", err)
		}
		_ = c.SetReadDeadline(time.Time{})

		// Queue bound: the sender never blocks, the excess is dropped.
		src := listen(t, n.Host("203.0.113.2"), ":1")
		for range QueueLen + 10 {
			send(t, src, c.local, "x")
		}
		if st := n.Stats(); st.Overflow != 10 || st.Delivered != QueueLen {
			t.Fatalf("stats %+v", st)
		}

		go func() {
			for {
				if _, _, err := c.ReadFrom(make([]byte, 10)); err != nil {
					done <- err
					return
				}
			}
		}()
		synctest.Wait()
		_ = c.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after Close: %v", err)
		}
		if _, err := c.WriteTo([]byte("x"), src.LocalAddr()); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after Close: %v", err)
		}
		// The port is free again.
		listen(t, h, ":50000")
	})
}

// TestIdleTimeout: a mapping left idle past the NAT's timeout is gone, so
// the remote cannot answer any more, and the next outbound datagram gets a
// new external port. This is what keepalives exist for.
func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New()
		defer n.Close()
		nat := n.NAT("198.51.100.1", EndpointIndependent, AddressAndPortDependent, 30*time.Second)
		client := listen(t, nat.Host("10.0.0.2"), ":4000")
		server := listen(t, n.Host("203.0.113.1"), ":1000")
		ext := observedFrom(t, client, server)[0]

		time.Sleep(29 * time.Second)
		send(t, server, ext, "still mapped")
		if _, _, ok := poll(client); !ok {
			t.Fatal("mapping expired early")
		}
		time.Sleep(31 * time.Second)
		send(t, server, ext, "too late")
		if _, _, ok := poll(client); ok {
			t.Fatal("mapping outlived its idle timeout")
		}
		if again := observedFrom(t, client, server)[0]; again == ext {
			t.Fatalf("expired mapping reused its port %v", ext)
		}
	})
}

// TestLatencyAndLoss: latency delays delivery by exactly the set time (on
// the bubble's clock), and loss drops about the set share.
func TestLatencyAndLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New()
		defer n.Close()
		n.SetLatency(20 * time.Millisecond)
		a := listen(t, n.Host("203.0.113.1"), ":1")
		b := listen(t, n.Host("203.0.113.2"), ":1")
		start := time.Now()
		send(t, a, b.local, "late")
		if _, _, err := b.ReadFrom(make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 20*time.Millisecond {
			t.Fatalf("arrived after %v, want 20ms", d)
		}

		n.SetLatency(0)
		n.SetLoss(0.5)
		for range 1000 {
			send(t, a, b.local, "x")
			poll(b)
		}
		if lost := n.Stats().Lost; lost < 400 || lost > 600 {
			t.Fatalf("lost %d of 1000 at p=0.5", lost)
		}
	})
}

// TestRandomPorts: with RandomPorts a symmetric NAT gives each flow a
// port anywhere in 1024-65535, not the next one, and a given seed gives
// the same ports again.
func TestRandomPorts(t *testing.T) {
	ports := func(seed uint64) []uint16 {
		n := New()
		defer n.Close()
		nat := n.NAT("198.51.100.1", AddressAndPortDependent, EndpointIndependent, 0)
		nat.RandomPorts(seed)
		client := listen(t, nat.Host("10.0.0.2"), ":4000")
		srv := n.Host("203.0.113.1")
		var servers []*Conn
		for i := range 20 {
			servers = append(servers, listen(t, srv, fmt.Sprintf(":%d", 5000+i)))
		}
		var out []uint16
		for _, a := range observedFrom(t, client, servers...) {
			out = append(out, a.Port())
		}
		return out
	}
	a := ports(7)
	sequential := true
	seen := map[uint16]bool{}
	for i, p := range a {
		if p < 1024 || seen[p] {
			t.Fatalf("port %d: out of range or repeated (%v)", p, a)
		}
		seen[p] = true
		if i > 0 && p != a[i-1]+1 {
			sequential = false
		}
	}
	if sequential {
		t.Fatalf("ports %v are sequential", a)
	}
	if b := ports(7); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("the same seed gave %v, then %v", a, b)
	}
}
