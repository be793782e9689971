package connet_test

import (
	"context"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
)

// udpBlocker opens real UDP sockets that drop every datagram sent while
// blocked is set: a network whose firewall drops outbound UDP.
type udpBlocker struct {
	osNetwork
	blocked atomic.Bool
}

func (b *udpBlocker) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	pc, err := b.osNetwork.ListenPacket(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &droppingConn{PacketConn: pc, blocked: &b.blocked}, nil
}

type droppingConn struct {
	net.PacketConn
	blocked *atomic.Bool
}

func (d *droppingConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if d.blocked.Load() {
		return len(p), nil
	}
	return d.PacketConn.WriteTo(p, addr)
}

// TestTCPFallbackWhenUDPBlocked: a client whose UDP is dropped reaches the
// control server and the relay over TLS over TCP (its QUIC handshakes time
// out), and still gets a relayed tunnel to a peer that uses QUIC: the
// source's path is relay-tcp, the destination's relay. When UDP passes
// again the client moves its control connection back to QUIC.
func TestTCPFallbackWhenUDPBlocked(t *testing.T) {
	testFallback(t, false)
}

// TestWebSocketFallbackWhenUDPBlocked: the same with servers that serve
// WebSockets but not plain TLS on TCP (as behind a proxy that only passes
// HTTPS): the client tries TLS, then WebSocket, and works over the latter.
func TestWebSocketFallbackWhenUDPBlocked(t *testing.T) {
	testFallback(t, true)
}

func testFallback(t *testing.T, wssOnly bool) {
	want := "tcp"
	if wssOnly {
		want = "wss"
	}
	h := fallbackHarness(t, wssOnly)
	ctx := context.Background()
	dc := h.connect("token-d")
	blocker := &udpBlocker{}
	blocker.blocked.Store(true)
	sc := h.connect("token-s",
		connet.ClientNetwork(blocker),
		connet.ClientHandshakeIdleTimeout(time.Second),
		connet.ClientQUICRetry(time.Second))
	if st := sc.Status().Control; !st.Connected || st.Transport != want {
		t.Fatalf("blocked client's control connection %+v, want connected over %s", st, want)
	}
	if st := dc.Status().Control; st.Transport != "quic" {
		t.Fatalf("unblocked client's control connection over %q, want quic", st.Transport)
	}

	dst, err := dc.Destination(ctx, connet.NewDestinationConfig("echo"))
	if err != nil {
		t.Fatal(err)
	}
	go echo(dst)
	src, err := sc.Source(ctx, connet.NewSourceConfig("echo"))
	if err != nil {
		t.Fatal(err)
	}
	conn := dialEventually(t, src)
	defer conn.Close()
	echoRandom(t, conn, 1<<20)
	if kinds := pathKinds(sc); !slices.Contains(kinds, "relay-tcp") || hasDirect(kinds) {
		t.Fatalf("blocked source's paths %v, want relay-tcp and no direct", kinds)
	}
	var dkinds []string
	for _, e := range dc.Status().Destinations {
		for _, p := range e.Peers {
			for _, pp := range p.Paths {
				dkinds = append(dkinds, pp.Kind)
			}
		}
	}
	if !slices.Contains(dkinds, "relay") {
		t.Fatalf("destination's paths %v, want relay (over QUIC)", dkinds)
	}
	relays := sc.Status().Relays
	if len(relays) != 1 || relays[0].Transport != want {
		t.Fatalf("blocked client's relays %+v, want one over %s", relays, want)
	}

	blocker.blocked.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for sc.Status().Control.Transport != "quic" {
		if time.Now().After(deadline) {
			t.Fatalf("control connection still %+v 10 s after UDP passed again", sc.Status().Control)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !sc.Status().Control.Connected {
		t.Fatal("not connected after moving back to QUIC")
	}
}

// fallbackHarness runs a control server with an in-process relay on
// loopback; with wssOnly, their TCP ports serve WebSockets only.
func fallbackHarness(t *testing.T, wssOnly bool) *harness {
	t.Helper()
	return newHarnessIngress(t, func(in *connet.Ingress) { in.NoTCP = wssOnly },
		with(connet.ServerRelayIngress(connet.RelayIngress{Addr: "127.0.0.1:0", Hostports: []string{"127.0.0.1:0"}, NoTCP: wssOnly})))
}
