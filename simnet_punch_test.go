package connet_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/direct"
	"github.com/p2pconnet/connet/internal/simnet"
	"github.com/p2pconnet/connet/internal/testwait"
)

// Tests of punching through a symmetric NAT (internal/direct/punch.go) on
// the simulated network: a real server with its relay, real clients, each
// behind a NAT whose external ports are random, as Linux's fully-random
// masquerade makes them.

// probeLog is a simulated host whose UDP sockets record when each punch probe is
// sent, from the client's main socket and from the fresh sockets of the
// side behind the symmetric NAT. lose makes the probes of this host
// vanish on the way (they are recorded, not sent), so that no punch can
// succeed.
type probeLog struct {
	*simnet.Host
	lose bool

	mu    sync.Mutex
	main  []time.Time // probes from the main socket
	fresh []time.Time // probes from fresh sockets
	socks int         // fresh sockets opened
}

func (l *probeLog) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	c, err := l.Host.ListenPacket(ctx, network, address)
	if err != nil {
		return nil, err
	}
	fresh := !strings.HasSuffix(address, ":19192")
	if fresh {
		l.mu.Lock()
		l.socks++
		l.mu.Unlock()
	}
	return &probeConn{PacketConn: c, log: l, fresh: fresh}, nil
}

func (l *probeLog) counts() (main, fresh, socks int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.main), len(l.fresh), l.socks
}

// maxPerSecond is the most probes sent within any one second.
func maxPerSecond(times []time.Time) int {
	most := 0
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < time.Second; j++ {
			n++
		}
		most = max(most, n)
	}
	return most
}

type probeConn struct {
	net.PacketConn
	log   *probeLog
	fresh bool
}

func (c *probeConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if direct.IsProbe(b) {
		c.log.mu.Lock()
		if c.fresh {
			c.log.fresh = append(c.log.fresh, time.Now())
		} else {
			c.log.main = append(c.log.main, time.Now())
		}
		c.log.mu.Unlock()
		if c.log.lose {
			return len(b), nil
		}
	}
	return c.PacketConn.WriteTo(b, addr)
}

// SetReadBuffer and SetWriteBuffer keep quic-go from warning about a
// socket whose buffers it cannot size.
func (c *probeConn) SetReadBuffer(int) error  { return nil }
func (c *probeConn) SetWriteBuffer(int) error { return nil }

// punchWorld is a server and two clients: a destination "echo" behind a
// NAT of the given mapping and a source behind one of its own, both
// filtering by address and port, both with random external ports.
type punchWorld struct {
	net        *simnet.Network
	srv        *simServer
	dc, sc     *connet.Client
	src        *connet.Source
	dlog, slog *probeLog
}

// The source's NAT filters as sFilter; loseSource makes its probes vanish.
func newPunchWorld(t *testing.T, dMap, sMap, sFilter simnet.Behaviour, loseSource bool) *punchWorld {
	t.Helper()
	return newPunchWorldWith(t, dMap, sMap, sFilter, loseSource, nil, nil)
}

// newPunchWorldWith is newPunchWorld with options for the destination's
// client and the source's.
func newPunchWorldWith(t *testing.T, dMap, sMap, sFilter simnet.Behaviour, loseSource bool, dOpts, sOpts []connet.ClientOption) *punchWorld {
	t.Helper()
	n := simnet.New()
	n.SetLatency(simOneWay)
	t.Cleanup(n.Close)
	srv := newSimServer(t, n, false)
	dnat := n.NAT("198.51.100.1", dMap, simnet.AddressAndPortDependent, 0)
	dnat.RandomPorts(1)
	snat := n.NAT("198.51.100.2", sMap, sFilter, 0)
	snat.RandomPorts(2)
	w := &punchWorld{net: n,
		dlog: &probeLog{Host: dnat.Host("10.1.0.2")},
		slog: &probeLog{Host: snat.Host("10.2.0.2"), lose: loseSource}}
	w.srv = srv
	w.dc = simConnect(t, srv, w.dlog, "token-d", dOpts...)
	w.sc = simConnect(t, srv, w.slog, "token-s", sOpts...)
	w.src = echoSource(t, w.dc, w.sc)
	return w
}

// TestSimnetDirectThroughSymmetricNAT: a destination behind a symmetric
// NAT (a new random port per destination) and a source behind a
// port-restricted cone: the clients learn their NAT kinds from the control
// server and the relay, the birthday punch finds a pair of ports, and the
// source gets a direct path that carries an echo. The other way round
// (the source behind the symmetric NAT) works the same.
func TestSimnetDirectThroughSymmetricNAT(t *testing.T) {
	for _, tc := range []struct {
		name       string
		dMap, sMap simnet.Behaviour
	}{
		{"destination-symmetric", simnet.AddressAndPortDependent, simnet.EndpointIndependent},
		{"source-symmetric", simnet.EndpointIndependent, simnet.AddressAndPortDependent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			simTest(t, func(t *testing.T) {
				w := newPunchWorld(t, tc.dMap, tc.sMap, simnet.AddressAndPortDependent, false)
				start := time.Now()
				// An attempt finds a pair with a probability over 99.9%; the
				// wait covers a second one after the cool-down.
				if !testwait.Until(3*time.Minute, func() bool { return hasDirect(pathKinds(w.sc)) }) {
					t.Fatalf("no direct path after 3 minutes: paths %v, stats %+v, NAT kinds %q %q",
						pathKinds(w.sc), w.net.Stats(), w.dc.Status().Control.NAT, w.sc.Status().Control.NAT)
				}
				took := time.Since(start)
				simEcho(t, w.src, "direct through a symmetric NAT")
				hard, easy := w.dlog, w.slog
				if tc.sMap == simnet.AddressAndPortDependent {
					hard, easy = w.slog, w.dlog
				}
				if got := hardStatus(w, tc.sMap); got != "per-destination" {
					t.Fatalf("the client behind the symmetric NAT reports NAT %q", got)
				}
				hm, hf, socks := hard.counts()
				em, ef, _ := easy.counts()
				t.Logf("direct after %v (virtual): hard side %d probes from %d fresh sockets, easy side %d probes", took, hf, socks, em)
				if hf == 0 || em == 0 {
					t.Fatalf("no punch: hard side sent %d probes, easy side %d", hf, em)
				}
				if hm != 0 || ef != 0 {
					t.Fatalf("probes from the wrong sockets: hard main %d, easy fresh %d", hm, ef)
				}
				if socks > 256 {
					t.Fatalf("the hard side opened %d sockets, at most 256 expected", socks)
				}
			})
		})
	}
}

// TestSimnetSymmetricFacingOpenNAT: a symmetric NAT facing a NAT that
// does not filter (a "full cone"): the plain dial from the symmetric
// side's main socket gets through, so the birthday punch never starts and
// not one probe is sent.
func TestSimnetSymmetricFacingOpenNAT(t *testing.T) {
	simTest(t, func(t *testing.T) {
		w := newPunchWorld(t, simnet.AddressAndPortDependent, simnet.EndpointIndependent, simnet.EndpointIndependent, false)
		if !testwait.Until(time.Minute, func() bool { return hasDirect(pathKinds(w.sc)) }) {
			t.Fatalf("no direct path after a minute: paths %v", pathKinds(w.sc))
		}
		simEcho(t, w.src, "direct without probes")
		time.Sleep(time.Minute)
		dm, df, socks := w.dlog.counts()
		sm, sf, _ := w.slog.counts()
		if dm+df+sm+sf+socks != 0 {
			t.Fatalf("probes were sent although the plain dial works: %d %d %d %d from %d fresh sockets", dm, df, sm, sf, socks)
		}
	})
}

func hardStatus(w *punchWorld, sMap simnet.Behaviour) string {
	if sMap == simnet.AddressAndPortDependent {
		return w.sc.Status().Control.NAT
	}
	return w.dc.Status().Control.NAT
}

// TestSimnetRelayWhenPunchingFails: behind two symmetric NATs no hole can
// be punched (each NAT uses a new port towards the peer, which the other's
// filtering drops) and no pair of ports can be searched for (neither
// mapping is known), so neither side sends a single probe; the clients
// still reach each other through the server's relay, and after minutes
// of trying there is still no direct path.
func TestSimnetRelayWhenPunchingFails(t *testing.T) {
	simTest(t, func(t *testing.T) {
		w := newPunchWorld(t, simnet.AddressAndPortDependent, simnet.AddressAndPortDependent, simnet.AddressAndPortDependent, false)
		if !testwait.Until(time.Minute, func() bool { return hasRelay(pathKinds(w.sc)) }) {
			t.Fatalf("no relay path after a minute: paths %v, stats %+v", pathKinds(w.sc), w.net.Stats())
		}
		simEcho(t, w.src, "through the relay")
		time.Sleep(3 * time.Minute)
		kinds := pathKinds(w.sc)
		if hasDirect(kinds) || !hasRelay(kinds) {
			t.Fatalf("after minutes the source has paths %v, want the relay's alone", kinds)
		}
		if w.net.Stats().Filtered == 0 {
			t.Fatalf("the NATs filtered nothing: the candidates were never dialed (stats %+v)", w.net.Stats())
		}
		for _, c := range []*connet.Client{w.dc, w.sc} {
			if got := c.Status().Control.NAT; got != "per-destination" {
				t.Fatalf("a client behind a symmetric NAT reports NAT %q", got)
			}
		}
		dm, df, _ := w.dlog.counts()
		sm, sf, _ := w.slog.counts()
		if dm+df+sm+sf != 0 {
			t.Fatalf("probes were sent although no punch can work: %d %d %d %d", dm, df, sm, sf)
		}
		simEcho(t, w.src, "still through the relay")
	})
}

// TestSimnetPunchBounds: a punch that cannot succeed (the easy side's
// probes are lost on the way) stays within its bounds: per attempt at most
// 256 fresh sockets and 3 rounds of probes from them, at most 2048 probes
// (and 64 answers) from the easy side, never more than 250 probes a second
// from either side, and one attempt per two-minute cool-down. The relay
// carries the traffic throughout.
func TestSimnetPunchBounds(t *testing.T) {
	simTest(t, func(t *testing.T) {
		w := newPunchWorld(t, simnet.AddressAndPortDependent, simnet.EndpointIndependent, simnet.AddressAndPortDependent, true)
		if !testwait.Until(time.Minute, func() bool { return hasRelay(pathKinds(w.sc)) }) {
			t.Fatalf("no relay path after a minute: paths %v", pathKinds(w.sc))
		}
		time.Sleep(5 * time.Minute)
		simEcho(t, w.src, "through the relay")
		if kinds := pathKinds(w.sc); hasDirect(kinds) {
			t.Fatalf("a direct path although the easy side's probes are lost: %v", kinds)
		}
		_, hard, socks := w.dlog.counts()
		easy, _, _ := w.slog.counts()
		w.dlog.mu.Lock()
		hardRate := maxPerSecond(w.dlog.fresh)
		w.dlog.mu.Unlock()
		w.slog.mu.Lock()
		easyRate := maxPerSecond(w.slog.main)
		w.slog.mu.Unlock()
		t.Logf("over about 6 minutes: hard side %d probes from %d sockets (at most %d/s), easy side %d probes (at most %d/s)",
			hard, socks, hardRate, easy, easyRate)
		// Attempts at 0, 2 and 4 minutes (and maybe one at 6).
		const attempts = 4
		if hard == 0 || easy == 0 {
			t.Fatalf("no punch was tried: hard %d, easy %d", hard, easy)
		}
		if hard > attempts*3*256 || socks > attempts*256 {
			t.Fatalf("hard side: %d probes from %d sockets, over the bounds of %d attempts", hard, socks, attempts)
		}
		if easy > attempts*(2048+64) {
			t.Fatalf("easy side: %d probes, over the bounds of %d attempts", easy, attempts)
		}
		if hard < 2*256 || easy < 2*2048 {
			t.Fatalf("fewer probes than two full attempts (hard %d, easy %d): the retry after the cool-down did not come", hard, easy)
		}
		if hardRate > 260 || easyRate > 260 {
			t.Fatalf("probe rate over 250/s: hard %d/s, easy %d/s", hardRate, easyRate)
		}
	})
}

// TestSimnetBirthdayPunchOff: with birthday punching off on either side
// (ClientBirthdayPunch(false)), a symmetric NAT facing a filtering cone
// stays relayed, and over minutes not one probe is sent by either side.
// The server still works out the NAT kinds.
func TestSimnetBirthdayPunchOff(t *testing.T) {
	for _, tc := range []struct {
		name         string
		symmetricOff bool
	}{
		{"off behind the symmetric NAT", true},
		{"off behind the cone", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			simTest(t, func(t *testing.T) {
				off := []connet.ClientOption{connet.ClientBirthdayPunch(false)}
				dOpts, sOpts := off, []connet.ClientOption(nil)
				if !tc.symmetricOff {
					dOpts, sOpts = nil, off
				}
				w := newPunchWorldWith(t, simnet.AddressAndPortDependent, simnet.EndpointIndependent, simnet.AddressAndPortDependent, false, dOpts, sOpts)
				if !testwait.Until(time.Minute, func() bool { return hasRelay(pathKinds(w.sc)) }) {
					t.Fatalf("no relay path after a minute: paths %v", pathKinds(w.sc))
				}
				simEcho(t, w.src, "through the relay")
				time.Sleep(3 * time.Minute)
				dm, df, dsocks := w.dlog.counts()
				sm, sf, ssocks := w.slog.counts()
				if dm+df+sm+sf+dsocks+ssocks != 0 {
					t.Fatalf("probes sent with birthday punching off: destination %d+%d from %d fresh sockets, source %d+%d from %d",
						dm, df, dsocks, sm, sf, ssocks)
				}
				if kinds := pathKinds(w.sc); hasDirect(kinds) || !hasRelay(kinds) {
					t.Fatalf("paths %v, want the relay's alone", kinds)
				}
				if got := w.dc.Status().Control.NAT; got != "per-destination" {
					t.Fatalf("the client behind the symmetric NAT reports NAT %q", got)
				}
				simEcho(t, w.src, "still through the relay")
			})
		})
	}
}

// TestSimnetPunchBudgetSurvivesReconnect: a peer behind a symmetric NAT
// that comes back at once with a new identity and punch secret (a
// restart, or a reconnect on purpose) gets no new burst of probes from
// the other side: the probe budget of its address is spent, and it fills
// up again only over time (2048 probes over 105 s). The easy side's
// probes are lost, so no attempt succeeds.
func TestSimnetPunchBudgetSurvivesReconnect(t *testing.T) {
	simTest(t, func(t *testing.T) {
		w := newPunchWorld(t, simnet.AddressAndPortDependent, simnet.EndpointIndependent, simnet.AddressAndPortDependent, true)
		start := time.Now()
		if !testwait.Until(time.Minute, func() bool { easy, _, _ := w.slog.counts(); return easy >= 2048 }) {
			easy, _, _ := w.slog.counts()
			t.Fatalf("the easy side sent %d probes in a minute, want a full attempt of 2048", easy)
		}
		_ = w.dc.Close()
		again := &probeLog{Host: w.dlog.Host}
		dc := simConnect(t, w.srv, again, "token-d")
		dst, err := dc.Destination(context.Background(), connet.NewDestinationConfig("echo"))
		if err != nil {
			t.Fatal(err)
		}
		go echo(dst)
		// The new peer's attempt starts at once, on both sides; wait out
		// its window.
		if !testwait.Until(time.Minute, func() bool { _, fresh, _ := again.counts(); return fresh > 0 }) {
			t.Fatal("the peer that came back never punched")
		}
		time.Sleep(20 * time.Second)
		elapsed := time.Since(start)
		easy, _, _ := w.slog.counts()
		limit := 2048 + int(2048*elapsed.Seconds()/105) + 1
		t.Logf("the easy side sent %d probes in %v (virtual) to an address whose peer came back with a new identity (budget %d)", easy, elapsed, limit)
		if limit >= 2*2048 {
			t.Fatalf("the test took %v: too long to tell a second burst from the refill", elapsed)
		}
		if easy > limit {
			t.Fatalf("the easy side sent %d probes in %v, over the budget of %d: the reconnect started a new burst", easy, elapsed, limit)
		}
		simEcho(t, w.src, "through the relay")
	})
}
