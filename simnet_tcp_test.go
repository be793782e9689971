package connet_test

import (
	"slices"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/simnet"
	"github.com/p2pconnet/connet/internal/testwait"
)

// These tests run the TCP and WebSocket fallback on the simulated network
// (see simnet_test.go): a client whose host's UDP is blocked reaches the
// server and its relay over simulated TCP, in a synctest bubble, without
// root. tcpfallback_test.go runs the same over loopback's real sockets.

// simTCPWorld is a server (wssOnly as simServer's) and two clients behind
// cone NATs: a destination "echo" whose UDP passes, and a source for it
// whose host's UDP is blocked until unblocked.
type simTCPWorld struct {
	net        *simnet.Network
	server     *simServer
	dc, sc     *connet.Client
	srcHost    *simnet.Host
	src        *connet.Source
	wantTransp string
}

func newSimTCPWorld(t *testing.T, wssOnly bool) *simTCPWorld {
	t.Helper()
	n := simnet.New()
	n.SetLatency(simOneWay)
	t.Cleanup(n.Close)
	srv := startSimServer(t, n, &simServer{wssOnly: wssOnly})
	w := &simTCPWorld{net: n, server: srv, wantTransp: "tcp"}
	if wssOnly {
		w.wantTransp = "wss"
	}
	cone := func(public string) *simnet.NAT {
		return n.NAT(public, simnet.EndpointIndependent, simnet.AddressAndPortDependent, 0)
	}
	w.dc = simConnect(t, srv, cone("198.51.100.1").Host("10.1.0.2"), "token-d")
	w.srcHost = cone("198.51.100.2").Host("10.2.0.2")
	w.srcHost.SetUDPBlocked(true)
	w.sc = simConnect(t, srv, w.srcHost, "token-s",
		connet.ClientHandshakeIdleTimeout(time.Second),
		connet.ClientQUICRetry(time.Second))
	w.src = echoSource(t, w.dc, w.sc)
	return w
}

// echoOverTCP waits for the source's relay-tcp path and checks that msg
// comes back through it.
func (w *simTCPWorld) echoOverTCP(t *testing.T, msg string) {
	t.Helper()
	if !testwait.Until(time.Minute, func() bool { return slices.Contains(pathKinds(w.sc), "relay-tcp") }) {
		t.Fatalf("no relay-tcp path after a minute: paths %v, stats %+v", pathKinds(w.sc), w.net.Stats())
	}
	simEcho(t, w.src, msg)
}

// TestSimnetTCPFallback: a client whose UDP is blocked connects to the
// control server and the relay over TLS over simulated TCP, gets a
// relayed tunnel (relay-tcp) to a peer on QUIC, and moves its control
// connection back to QUIC once UDP passes again.
func TestSimnetTCPFallback(t *testing.T) {
	simTest(t, func(t *testing.T) { testSimFallback(t, false) })
}

// TestSimnetWebSocketFallback: the same with servers whose TCP ports
// serve WebSockets only: the client tries TLS, then a WebSocket.
func TestSimnetWebSocketFallback(t *testing.T) {
	simTest(t, func(t *testing.T) { testSimFallback(t, true) })
}

func testSimFallback(t *testing.T, wssOnly bool) {
	w := newSimTCPWorld(t, wssOnly)
	if st := w.sc.Status().Control; !st.Connected || st.Transport != w.wantTransp {
		t.Fatalf("blocked client's control connection %+v, want connected over %s", st, w.wantTransp)
	}
	if st := w.dc.Status().Control; st.Transport != "quic" {
		t.Fatalf("unblocked client's control connection over %q, want quic", st.Transport)
	}
	w.echoOverTCP(t, "over the fallback")
	if kinds := pathKinds(w.sc); hasDirect(kinds) {
		t.Fatalf("blocked source's paths %v, want no direct one", kinds)
	}
	if relays := w.sc.Status().Relays; len(relays) != 1 || relays[0].Transport != w.wantTransp {
		t.Fatalf("blocked client's relays %+v, want one over %s", relays, w.wantTransp)
	}

	w.srcHost.SetUDPBlocked(false)
	if !testwait.Until(time.Minute, func() bool {
		st := w.sc.Status().Control
		return st.Connected && st.Transport == "quic"
	}) {
		t.Fatalf("control connection still %+v a minute after UDP passed again", w.sc.Status().Control)
	}
}

// TestSimnetServerRestartOverTCP: the server stops and starts again at the
// same addresses while a client whose UDP is blocked is connected over
// TCP; the client reconnects over TCP, and a new echo works.
func TestSimnetServerRestartOverTCP(t *testing.T) {
	simTest(t, func(t *testing.T) {
		w := newSimTCPWorld(t, false)
		w.echoOverTCP(t, "before the restart")
		w.server.stop()
		if !testwait.Until(time.Minute, func() bool { return !w.sc.Status().Control.Connected }) {
			t.Fatal("the client did not notice that the server stopped")
		}
		w.server.start()
		if !testwait.Until(time.Minute, func() bool {
			st := w.sc.Status().Control
			return st.Connected && len(w.server.srv.Status().Control.Clients) == 2
		}) {
			t.Fatalf("client not back after a minute: %+v", w.sc.Status().Control)
		}
		if st := w.sc.Status().Control; st.Transport != "tcp" {
			t.Fatalf("client back over %q, want tcp (its UDP is blocked)", st.Transport)
		}
		w.echoOverTCP(t, "after the restart")
	})
}
