package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
	"github.com/p2pconnet/connet/internal/testwait"
)

// The scale measurement: how many connections are held at once, how many
// are opened each second and for how long.
const (
	scaleConns    = 10000
	scaleRate     = 200
	scaleDuration = time.Minute
	// scaleBatch is how many connections are opened before waiting for
	// their tunnels: well below the relay's pending-stream quota (1024
	// per client by default).
	scaleBatch = 48
	// scaleLimit bounds each wait of the measurement: for all connections
	// to be open end to end, to echo, to be gone again.
	scaleLimit = 3 * time.Minute
	// What a client may keep beyond its baseline once the rate test's
	// connections have closed: the status request's own connection and
	// timers that come and go.
	scaleGoroutineSlack = 8
	scaleFDSlack        = 4
)

// TestScale opens 10 000 concurrent connections through a direct source
// and then through one forced through the server's relay (Public topology),
// echoes a small message on every one once all are open (none may stall),
// and reports the RSS of both clients and of the server (with its relay) at
// idle, with the connections open and after they closed, with the growth
// per connection. Then it opens 200 connections a second for a minute
// through each source, each echoing a message, and checks that the
// clients' goroutines and open files come back to their baseline. Set
// CONNET_BENCH=1 to run it (scripts/bench.sh does).
func TestScale(t *testing.T) {
	if os.Getenv("CONNET_BENCH") == "" {
		t.Skip("set CONNET_BENCH=1 to measure scale")
	}
	needNoFile(t, scaleConns+1024)
	d := newBenchDeployment(t, natlab.Public)
	// The relay must take 10 000 connections of one client; its default
	// quota is 4096.
	server, err := os.ReadFile(d.path("server.toml"))
	if err != nil {
		t.Fatal(err)
	}
	d.write("server.toml", string(server)+fmt.Sprintf("max-client-streams = %d\n", 2*scaleConns))
	startService(t, d.lab.A, echoService, "127.0.0.1:"+servicePort)
	d.startServer()
	d.writeDirectAndRelayed(sourcePort, relayedSourcePort)
	// Each path is measured on clients started for it: a Go process keeps
	// the memory it once used, so a second measurement in the same
	// processes would start from the first one's peak.
	var dst, src *natlab.Proc
	startClients := func(round string) []scaleProc {
		for _, p := range []*natlab.Proc{dst, src} {
			if p != nil {
				_ = p.Stop()
			}
		}
		dst = d.startClient(d.lab.A, "destination-"+round, d.path("destination.toml"))
		src = d.startClient(d.lab.B, "source-"+round, d.path("source.toml"))
		if _, _, err := waitStatus(d.lab.B, pathLimit, func(st connet.ClientStatus) bool {
			// Sources are sorted by name: relayed, web.
			return len(st.Sources) == 2 && hasRelay(connet.ClientStatus{Sources: st.Sources[:1]}) &&
				hasDirect(connet.ClientStatus{Sources: st.Sources[1:]})
		}); err != nil {
			t.Fatal(err)
		}
		// One echo through each source first, so that the baseline
		// includes what the first connection sets up once (streams,
		// pools, TLS state).
		for _, port := range []string{sourcePort, relayedSourcePort} {
			if err := echoSmall(d.lab.B, "127.0.0.1:"+port, 0); err != nil {
				t.Fatal(err)
			}
		}
		return []scaleProc{{"source", d.lab.B, src}, {"destination", d.lab.A, dst}, {"server", d.lab.Server, d.server}}
	}

	var procs []scaleProc
	for _, path := range scalePaths {
		procs = startClients(path.name)
		active := func() int64 { return destinationActive(d.lab.A, path.destination) }
		idle := settle(t, procs, nil)
		conns := openAll(t, d.lab.B, "127.0.0.1:"+path.port, active)
		open := settle(t, procs, nil)
		echoAll(t, conns)
		echoed := settle(t, procs, nil)
		for _, c := range conns {
			_ = c.Close()
		}
		testwait.For(t, scaleLimit, func() bool { return active() == 0 }, "the destination's connections to close")
		closed := settle(t, procs, idle)
		for _, p := range procs {
			name := p.name
			t.Logf("MEASURE scale path=%s %s: rss_MiB idle=%.1f open=%.1f echoed=%.1f closed=%.1f per_conn_KiB=%.1f (echoed %.1f) goroutines %d→%d→%d fds %d→%d→%d",
				path.name, name, mib(idle[name].rss), mib(open[name].rss), mib(echoed[name].rss), mib(closed[name].rss),
				perConnKiB(idle[name].rss, open[name].rss), perConnKiB(idle[name].rss, echoed[name].rss),
				idle[name].goroutines, open[name].goroutines, closed[name].goroutines, idle[name].fds, open[name].fds, closed[name].fds)
		}
	}

	for _, path := range scalePaths {
		base := settle(t, procs, nil)
		ok, failed := openAtRate(d.lab.B, "127.0.0.1:"+path.port)
		end := settle(t, procs, base)
		for _, p := range procs {
			name := p.name
			t.Logf("MEASURE scale rate path=%s %s: goroutines %d→%d fds %d→%d rss_MiB %.1f→%.1f",
				path.name, name, base[name].goroutines, end[name].goroutines, base[name].fds, end[name].fds, mib(base[name].rss), mib(end[name].rss))
		}
		// A ticker drops ticks the loop was too busy to take: the rate
		// reached is what was opened over the time.
		t.Logf("MEASURE scale rate path=%s per_s=%d (reached %.0f) for=%v ok=%d failed=%d",
			path.name, scaleRate, float64(ok+failed)/scaleDuration.Seconds(), scaleDuration, ok, failed)
		if failed > 0 {
			t.Errorf("%s: %d of %d connections at %d/s failed", path.name, failed, ok+failed, scaleRate)
		}
		if !within(base, end) {
			t.Errorf("%s: goroutines or open files of a client did not come back to their baseline (+%d, +%d) within %v: before %+v, after %+v",
				path.name, scaleGoroutineSlack, scaleFDSlack, scaleLimit, base, end)
		}
	}
}

// scalePaths are the sources measured, with the destination each reaches.
var scalePaths = []struct{ name, port, destination string }{
	{"direct", sourcePort, "web"},
	{"relay", relayedSourcePort, "relayed"},
}

// needNoFile fails the test if this process may not open n files: it
// holds one end of every measured connection (the echo service, in a
// process of its own, the other; each client one socket per connection).
// Go raises the soft limit to the hard one at start; raising the hard
// limit needs privileges the test may not have.
func needNoFile(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < n {
		t.Fatalf("the open-file limit is %d, the test needs %d (ulimit -n)", lim.Cur, n)
	}
}

// destinationActive returns the open connections of the destination
// client's endpoint name, as its status shows them, or -1 if unknown.
func destinationActive(h *natlab.Host, name string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := status(ctx, h)
	if err != nil {
		return -1
	}
	for _, e := range st.Destinations {
		if e.Name == name {
			return e.ActiveConnections
		}
	}
	return -1
}

// scaleProc is a lab process whose figures are read.
type scaleProc struct {
	name string
	host *natlab.Host
	proc *natlab.Proc
}

// settle waits for the processes' figures to stop moving (Go frees memory
// and ends goroutines a little after the work that used them), or, with a
// baseline, to come back within bounds of it; it returns the last figures.
// The server has no status page: its goroutines are not counted.
func settle(t *testing.T, procs []scaleProc, base map[string]procFigures) map[string]procFigures {
	t.Helper()
	read := func() map[string]procFigures {
		m := map[string]procFigures{}
		for _, p := range procs {
			f := figures(t, p.host, p.proc)
			if p.name == "server" {
				f.goroutines = 0
			}
			m[p.name] = f
		}
		return m
	}
	prev := read()
	deadline := time.Now().Add(scaleLimit)
	for time.Now().Before(deadline) {
		time.Sleep(2 * time.Second)
		cur := read()
		if base != nil && within(base, cur) || base == nil && same(prev, cur) {
			return cur
		}
		prev = cur
	}
	return prev
}

// same reports whether the goroutines and open files of every process are
// unchanged between two readings.
func same(a, b map[string]procFigures) bool {
	for name, f := range a {
		if g := b[name]; g.goroutines != f.goroutines || g.fds != f.fds {
			return false
		}
	}
	return true
}

// within reports whether every process's goroutines and open files are
// back within the slack of its baseline.
func within(base, cur map[string]procFigures) bool {
	for name, b := range base {
		c := cur[name]
		if c.goroutines > b.goroutines+scaleGoroutineSlack || c.fds > b.fds+scaleFDSlack {
			return false
		}
	}
	return true
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func perConnKiB(before, after int64) float64 {
	return float64(after-before) / 1024 / scaleConns
}

// openAll opens scaleConns connections to addr from h and waits until the
// destination counts them all open (active), i.e. every tunnel is through.
func openAll(t *testing.T, h *natlab.Host, addr string, active func() int64) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, scaleConns)
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	})
	// The source accepts at once and tunnels behind the test's back: in
	// batches, so that no more tunnels are being set up at a time than the
	// relay lets one client have waiting (max-pending-streams, which the
	// test raises).
	for start := 0; start < len(conns); start += scaleBatch {
		end := min(start+scaleBatch, len(conns))
		for i := start; i < end; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			c, err := h.DialTCP(ctx, addr)
			cancel()
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			conns[i] = c
		}
		testwait.For(t, scaleLimit, func() bool { return active() >= int64(end) }, "%d connections open at the destination", end)
	}
	return conns
}

// echoAll sends a small message on every connection at once and checks
// that each comes back: a stalled connection fails at its deadline.
func echoAll(t *testing.T, conns []net.Conn) {
	t.Helper()
	var failed atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			if err := echoOn(c, i); err != nil {
				failed.Add(1)
				first.CompareAndSwap(nil, err)
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d connections did not echo; first: %v", n, len(conns), first.Load())
	}
}

// echoOn writes a message naming i on c and reads it back, within a bound.
func echoOn(c net.Conn, i int) error {
	_ = c.SetDeadline(time.Now().Add(scaleLimit))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	msg := fmt.Appendf(nil, "connection %d", i)
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("connection %d: write: %w", i, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("connection %d: read: %w", i, err)
	}
	if string(got) != string(msg) {
		return fmt.Errorf("connection %d: echoed %q, want %q", i, got, msg)
	}
	return nil
}

// echoSmall opens a connection to addr from h, echoes a message on it and
// closes it.
func echoSmall(h *natlab.Host, addr string, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := h.DialTCP(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return echoOn(c, i)
}

// openAtRate opens scaleRate connections a second to addr from h for
// scaleDuration, each echoing a message and closing, and counts how many
// worked.
func openAtRate(h *natlab.Host, addr string) (ok, failed int64) {
	var okN, failedN atomic.Int64
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / scaleRate)
	defer tick.Stop()
	end := time.Now().Add(scaleDuration)
	for i := 0; time.Now().Before(end); i++ {
		<-tick.C
		wg.Go(func() {
			if err := echoSmall(h, addr, i); err != nil {
				failedN.Add(1)
				return
			}
			okN.Add(1)
		})
	}
	wg.Wait()
	return okN.Load(), failedN.Load()
}
