package natlab

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/portmap"
	"github.com/p2pconnet/connet/internal/testprog"
)

// TestGatewayMapsPorts runs the client side of package portmap in A's
// namespace against the gateway on A's router, for each protocol (every
// client opens its sockets on the goroutine that runs it, so all stay in
// the namespace): the mapping is made, forwards both ways through the
// symmetric NAT with real rules, survives a gateway restart (NAT-PMP and
// PCP: the client sees the epoch go back and maps again; UPnP has no
// epoch), and is deleted when the client stops.
func TestGatewayMapsPorts(t *testing.T) {
	Require(t)
	for _, proto := range portmap.Auto {
		t.Run(string(proto), func(t *testing.T) {
			// A lab each: a gateway restarted twice within seconds
			// could not show the second restart in its epoch.
			l := New(t, SymmetricPortMap)
			srv := listenUDP(t, l.Server)
			c := listenUDP(t, l.A)
			port := uint16(c.LocalAddr().(*net.UDPAddr).Port)
			internal := netip.AddrPortFrom(l.A.Addr, port)
			var logs testprog.LockedBuffer
			m := portmap.New(portmap.Config{
				Protocols: []portmap.Protocol{proto},
				Port:      port,
				Gateway: func(context.Context) (netip.Addr, netip.Addr, error) {
					return l.A.NAT.Gateway, l.A.Addr, nil
				},
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			// The mapper's sockets are made on the goroutine that runs it,
			// so it runs inside A's namespace.
			go func() { done <- l.A.Do(func() error { return m.Run(ctx) }) }()
			defer func() {
				cancel()
				<-done
				if t.Failed() {
					t.Logf("mapper log:\n%s", logs.String())
				}
			}()

			mp := waitMapping(t, m, func(mp portmap.Mapping) bool { return mp.Valid() })
			want := netip.AddrPortFrom(l.A.PublicAddr, port)
			if mp.Protocol != proto || mp.External != want || mp.Gateway != l.A.NAT.Gateway {
				t.Fatalf("mapping %+v, want %s at %s by %s", mp, want, l.A.NAT.Gateway, proto)
			}
			if gm := l.Gateway.WaitMapping(t, internal, 5*time.Second); gm.External != want || gm.Protocol != string(proto) {
				t.Fatalf("gateway holds %+v", gm)
			}
			checkForwarding(t, srv, c, want)

			if proto == portmap.UPnP {
				stopAndCheckDeleted(t, cancel, done, l.Gateway, internal)
				return
			}
			l.Gateway.Restart(t)
			if len(l.Gateway.Mappings()) != 0 {
				t.Fatal("mappings survived the restart")
			}
			// The gateway announces its restart, and the client renews at
			// once; without the announcement, the lab's lifetimes of at
			// most 8 s bring a renewal within 4 s.
			l.Gateway.WaitMapping(t, internal, 10*time.Second)
			waitLog(t, &logs, "gateway restarted")
			waitLog(t, &logs, "gateway announcement: renewing at once")
			checkForwarding(t, srv, c, want)
			stopAndCheckDeleted(t, cancel, done, l.Gateway, internal)
		})
	}
}

// stopAndCheckDeleted stops the mapper (cancel, then its result on done)
// and checks that it deleted its mapping of internal from g.
func stopAndCheckDeleted(t *testing.T, cancel func(), done chan error, g *Gateway, internal netip.AddrPort) {
	t.Helper()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // for the deferred wait
	for _, gm := range g.Mappings() {
		if gm.Internal == internal {
			t.Fatalf("mapping %+v left on the gateway after the client stopped", gm)
		}
	}
}

// checkForwarding checks that the server reaches c at the mapped address
// and that c's answer comes from it.
func checkForwarding(t *testing.T, srv, c *net.UDPConn, mapped netip.AddrPort) {
	t.Helper()
	if !exchange(t, srv, mapped, c) {
		t.Fatalf("nothing sent to %s reached the client", mapped)
	}
	// The way out: the mapping holds for the client's own packets too,
	// so the symmetric NAT does not pick a new port for them.
	to := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	buf := make([]byte, 64)
	for range probeTries {
		if _, err := c.WriteToUDPAddrPort([]byte("natlab-test"), to); err != nil {
			t.Fatal(err)
		}
		_ = srv.SetReadDeadline(time.Now().Add(probeWait))
		n, from, err := srv.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != "natlab-test" {
			continue
		}
		if from != mapped {
			t.Fatalf("the server saw the client at %s, want the mapped %s", from, mapped)
		}
		return
	}
	t.Fatalf("nothing the client sent reached the server")
}

func waitMapping(t *testing.T, m *portmap.Mapper, ok func(portmap.Mapping) bool) portmap.Mapping {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		mp, changed := m.Mapping()
		if ok(mp) {
			return mp
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no mapping within 10 s (last %+v)", mp)
		}
	}
}

func waitLog(t *testing.T, logs *testprog.LockedBuffer, want string) {
	t.Helper()
	for start := time.Now(); !strings.Contains(logs.String(), want); {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no %q in the log within 10 s", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
