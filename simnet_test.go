package connet_test

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/simnet"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/testwait"
)

// These tests run a real server (control server and in-process relay) and
// real clients on a simulated network (internal/simnet): the server on a
// public host, each client behind a NAT of its own. Each test runs in a
// synctest bubble, so quic-go's timers, the clients' retries and the
// network's latency run on the bubble's clock: a minute of waiting for a
// punch that cannot succeed, or for a reconnect backoff, takes
// milliseconds. A bubble fails on goroutines left behind, as goleak does
// for the rest of the package.

const (
	simServerHost = "203.0.113.1"
	simControl    = simServerHost + ":19190"
	simRelay      = simServerHost + ":19191"
	// simRelayControl is where relays that run apart join.
	simRelayControl = simServerHost + ":19189"
	// simRelayHost is the public host of a relay that runs apart.
	simRelayHost = "203.0.113.2"
	// simOneWay is every datagram's one-way delay.
	simOneWay = 10 * time.Millisecond
)

// simServer is a control server with an in-process relay on a public
// simulated host; it can be stopped and started again on the same
// address and store.
type simServer struct {
	t     *testing.T
	host  *simnet.Host
	cert  *testcert.Cert
	store string
	// split runs no relay in process: relays that run apart join at
	// simRelayControl.
	split bool
	// wssOnly serves WebSockets but not plain TLS on the TCP ports (as
	// behind a proxy that passes only HTTPS).
	wssOnly bool

	srv    *connet.Server
	cancel context.CancelFunc
	done   chan error
}

func newSimServer(t *testing.T, n *simnet.Network, split bool) *simServer {
	t.Helper()
	return startSimServer(t, n, &simServer{split: split})
}

// startSimServer starts s, as configured, at simServerHost.
func startSimServer(t *testing.T, n *simnet.Network, s *simServer) *simServer {
	t.Helper()
	cert, err := testcert.New(simServerHost)
	if err != nil {
		t.Fatal(err)
	}
	s.t, s.host, s.cert, s.store = t, n.Host(simServerHost), cert, t.TempDir()
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *simServer) start() {
	s.t.Helper()
	opts := []connet.ServerOption{
		connet.ServerIngress(connet.Ingress{Addr: simControl, Cert: s.cert.TLS, NoTCP: s.wssOnly}),
		connet.ServerClientTokens("token-d", "token-s"),
		connet.ServerStoreDir(s.store),
		connet.ServerNetwork(s.host),
		connet.ServerLogger(testLogger(s.t)),
	}
	if s.split {
		opts = append(opts,
			connet.ServerRelayControlIngress(connet.Ingress{Addr: simRelayControl, Cert: s.cert.TLS}),
			connet.ServerRelayTokens([]string{"relay-token"}, nil))
	} else {
		opts = append(opts, connet.ServerRelayIngress(connet.RelayIngress{Addr: simRelay, Hostports: []string{simRelay}, NoTCP: s.wssOnly}))
	}
	srv, err := connet.NewServer(opts...)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.srv, s.cancel, s.done = srv, cancel, make(chan error, 1)
	go func() { s.done <- srv.Run(ctx) }()
	// Bounded: a server that fails to bind never reports addresses, and
	// the clients' retries keep the bubble's clock going forever.
	actx, acancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer acancel()
	if a := srv.Addrs(actx); len(a) != 1 || a[0].String() != simControl {
		s.stop()
		s.t.Fatalf("server bound %v, want %s", a, simControl)
	}
}

// stop stops the server (once) and waits for it.
func (s *simServer) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	if err := <-s.done; err != nil {
		s.t.Errorf("server: %v", err)
	}
	s.cancel = nil
}

// simConnect connects a client with token from h, with opts besides.
func simConnect(t *testing.T, s *simServer, h connet.Network, token string, opts ...connet.ClientOption) *connet.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := connet.Connect(ctx, append([]connet.ClientOption{
		connet.ClientToken(token),
		connet.ClientControlAddress(simControl),
		connet.ClientControlCAs(s.cert.Pool),
		connet.ClientDirectAddress(":19192"),
		connet.ClientNetwork(h),
		connet.ClientNatPMP(connet.NatPMPDisabled),
		connet.ClientLogger(testLogger(t)),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// simWorld is a server and two NATed clients, a destination "echo" on
// one and a source for it on the other.
type simWorld struct {
	net    *simnet.Network
	server *simServer
	dc, sc *connet.Client
	src    *connet.Source
}

func newSimWorldClients(t *testing.T, dMap, dFilter, sMap, sFilter simnet.Behaviour) *simWorld {
	t.Helper()
	n := simnet.New()
	n.SetLatency(simOneWay)
	t.Cleanup(n.Close)
	return newSimWorldOn(t, n, newSimServer(t, n, false), dMap, dFilter, sMap, sFilter)
}

func newSimWorldOn(t *testing.T, n *simnet.Network, srv *simServer, dMap, dFilter, sMap, sFilter simnet.Behaviour) *simWorld {
	t.Helper()
	w := &simWorld{net: n, server: srv}
	w.dc = simConnect(t, w.server, n.NAT("198.51.100.1", dMap, dFilter, 0).Host("10.1.0.2"), "token-d")
	w.sc = simConnect(t, w.server, n.NAT("198.51.100.2", sMap, sFilter, 0).Host("10.2.0.2"), "token-s")
	w.src = echoSource(t, w.dc, w.sc)
	return w
}

// echoSource runs an echo destination "echo" on dc and returns a source
// for it on sc.
func echoSource(t *testing.T, dc, sc *connet.Client) *connet.Source {
	t.Helper()
	ctx := context.Background()
	dst, err := dc.Destination(ctx, connet.NewDestinationConfig("echo"))
	if err != nil {
		t.Fatal(err)
	}
	go echo(dst)
	src, err := sc.Source(ctx, connet.NewSourceConfig("echo"))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// pathKinds lists the kinds of the source's live paths to its one
// destination.
func pathKinds(c *connet.Client) []string {
	st := c.Status()
	var kinds []string
	for _, e := range st.Sources {
		for _, p := range e.Peers {
			for _, pp := range p.Paths {
				kinds = append(kinds, pp.Kind)
			}
		}
	}
	return kinds
}

func hasDirect(kinds []string) bool {
	for _, k := range kinds {
		if strings.HasPrefix(k, "direct") {
			return true
		}
	}
	return false
}

func hasRelay(kinds []string) bool {
	for _, k := range kinds {
		if k == "relay" {
			return true
		}
	}
	return false
}

// simEcho dials the source and checks that msg comes back.
func simEcho(t *testing.T, src *connet.Source, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := src.Dial(ctx)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo: %q, %v", buf, err)
	}
}

// simTest runs f in a synctest bubble and logs how long it took, in
// virtual and in real time.
func simTest(t *testing.T, f func(t *testing.T)) {
	real := time.Now()
	var virtual time.Duration
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		t.Cleanup(func() { virtual = time.Since(start) })
		f(t)
	})
	t.Logf("%v of virtual time in %v of real time", virtual, time.Since(real).Round(time.Millisecond))
}

// TestSimnetDirectThroughConeNATs: a destination and a source, each behind
// a port-restricted cone NAT (endpoint-independent mapping, strictest
// filtering), connect to a real control server, which tells each the
// other's observed address; they punch a direct path, the source's status
// shows it, and an echo goes through.
func TestSimnetDirectThroughConeNATs(t *testing.T) {
	simTest(t, func(t *testing.T) {
		w := newSimWorldClients(t,
			simnet.EndpointIndependent, simnet.AddressAndPortDependent,
			simnet.EndpointIndependent, simnet.AddressAndPortDependent)
		if !testwait.Until(time.Minute, func() bool { return hasDirect(pathKinds(w.sc)) }) {
			t.Fatalf("no direct path after a minute: paths %v, stats %+v", pathKinds(w.sc), w.net.Stats())
		}
		simEcho(t, w.src, "direct through two cone NATs")
		if got := w.sc.Status().Sources[0].TotalConnections; got != 1 {
			t.Fatalf("source counted %d connections, want 1", got)
		}
		t.Logf("paths %v, stats %+v", pathKinds(w.sc), w.net.Stats())
	})
}

// TestSimnetServerRestart: the server (control and relay) stops and starts
// again at the same address with the same store; both clients reconnect
// to it (on their own backoff, on virtual time) and a new echo works.
func TestSimnetServerRestart(t *testing.T) {
	simTest(t, func(t *testing.T) {
		w := newSimWorldClients(t,
			simnet.EndpointIndependent, simnet.AddressAndPortDependent,
			simnet.EndpointIndependent, simnet.AddressAndPortDependent)
		if !testwait.Until(time.Minute, func() bool { return len(pathKinds(w.sc)) > 0 }) {
			t.Fatalf("no path after a minute: stats %+v", w.net.Stats())
		}
		simEcho(t, w.src, "before the restart")

		w.server.stop()
		connected := func(c *connet.Client) bool { return c.Status().Control.Connected }
		if !testwait.Until(time.Minute, func() bool { return !connected(w.dc) && !connected(w.sc) }) {
			t.Fatal("the clients did not notice that the server stopped")
		}
		down := time.Now()
		w.server.start()
		if !testwait.Until(time.Minute, func() bool {
			return connected(w.dc) && connected(w.sc) && len(w.server.srv.Status().Control.Clients) == 2
		}) {
			t.Fatalf("clients not back after a minute: d %+v, s %+v, server sees %d",
				w.dc.Status().Control, w.sc.Status().Control, len(w.server.srv.Status().Control.Clients))
		}
		t.Logf("clients back %v (virtual) after the server was", time.Since(down))
		if !testwait.Until(time.Minute, func() bool { return len(pathKinds(w.sc)) > 0 }) {
			t.Fatalf("no path after the restart: stats %+v", w.net.Stats())
		}
		simEcho(t, w.src, "after the restart")
	})
}

// TestSimnetSplitRelay: the relay runs apart, on a public host of its
// own, and joins the control server over simnet from its own socket
// (RelayNetwork covers both its ingress and that socket). Clients
// behind a symmetric NAT and a port-restricted cone reach each other
// through it.
func TestSimnetSplitRelay(t *testing.T) {
	simTest(t, func(t *testing.T) {
		n := simnet.New()
		n.SetLatency(simOneWay)
		t.Cleanup(n.Close)
		srv := newSimServer(t, n, true)
		relayAddr := simRelayHost + ":19191"
		r, err := connet.NewRelay(
			connet.RelayToken("relay-token"),
			connet.RelayControlAddress(simRelayControl),
			connet.RelayControlCAs(srv.cert.Pool),
			connet.RelayIngressAt(connet.RelayIngress{Addr: relayAddr, Hostports: []string{relayAddr}}),
			connet.RelayStoreDir(t.TempDir()),
			connet.RelayNetwork(n.Host(simRelayHost)),
			connet.RelayLogger(testLogger(t)),
		)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		relayDone := make(chan error, 1)
		go func() { relayDone <- r.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-relayDone; err != nil {
				t.Errorf("relay: %v", err)
			}
		})
		w := newSimWorldOn(t, n, srv,
			simnet.AddressAndPortDependent, simnet.AddressAndPortDependent, // symmetric
			simnet.EndpointIndependent, simnet.AddressAndPortDependent) // port-restricted cone
		if !testwait.Until(time.Minute, func() bool { return hasRelay(pathKinds(w.sc)) }) {
			t.Fatalf("no relay path after a minute: paths %v, stats %+v", pathKinds(w.sc), w.net.Stats())
		}
		simEcho(t, w.src, "through a relay of its own")
		if got := len(r.Status().Clients); got != 2 {
			t.Fatalf("the relay serves %d clients, want 2", got)
		}
		t.Logf("paths %v, stats %+v", pathKinds(w.sc), w.net.Stats())
	})
}

// TestServerNetworkNil: a nil network is refused, not taken for
// the default.
func TestServerNetworkNil(t *testing.T) {
	if _, err := connet.NewServer(connet.ServerNetwork(nil)); err == nil {
		t.Fatal("NewServer took a nil network")
	}
	if _, err := connet.NewRelay(connet.RelayToken("x"), connet.RelayNetwork(nil)); err == nil {
		t.Fatal("NewRelay took a nil network")
	}
}

var _ connet.Network = (*simnet.Host)(nil)
var _ net.PacketConn = (*simnet.Conn)(nil)
