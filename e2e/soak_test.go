package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
	"github.com/p2pconnet/connet/internal/tuning"
)

// Ports of the soak's two sources on B: one may go direct, one is forced
// through the relay.
const (
	soakDirectPort  = "8000"
	soakRelayedPort = "8001"
)

// Bounds the soak checks at the end, against the figures measured once the
// workload had warmed up: what a client may keep beyond that, after its
// connections have closed.
const (
	soakGoroutineSlack = 16
	soakFDSlack        = 32
	soakRSSSlack       = 96 << 20
)

// TestSoak runs a mixed workload for CONNET_SOAK (a duration, e.g. 1m;
// unset skips): workers open connections through a direct and a relayed
// source and echo random data of random sizes through them, while the
// relay, the control server and the destination client are restarted in
// turn. No transfer may come back corrupted (failures while something
// restarts are counted, not fatal). At the end each client's goroutines,
// open files and RSS must be back near the figures measured after warm-up.
// scripts/soak.sh runs it; CI runs one minute.
func TestSoak(t *testing.T) {
	dur, err := time.ParseDuration(os.Getenv("CONNET_SOAK"))
	if err != nil || dur <= 0 {
		t.Skip("set CONNET_SOAK to a duration (e.g. 1m) to run the soak")
	}
	d, startRelay := splitDeployment(t, natlab.Cone)
	relay := startRelay()
	serveTCP(t, d.lab.A, "127.0.0.1:"+servicePort, func(c net.Conn) { _, _ = io.Copy(c, c) })
	d.writeDirectAndRelayed(soakDirectPort, soakRelayedPort)
	dst := d.startClient(d.lab.A, "destination", d.path("destination.toml"))
	src := d.startClient(d.lab.B, "source", d.path("source.toml"))
	if _, _, err := waitStatus(d.lab.B, pathLimit, func(st connet.ClientStatus) bool {
		return len(st.Sources) == 2 && hasRelay(connet.ClientStatus{Sources: st.Sources[:1]}) &&
			hasDirect(connet.ClientStatus{Sources: st.Sources[1:]})
	}); err != nil {
		t.Fatal(err)
	}

	var s soakStats
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var workers sync.WaitGroup
	for w := range 4 {
		port := soakDirectPort
		if w%2 == 1 {
			port = soakRelayedPort
		}
		workers.Go(func() { s.work(ctx, d.lab.B, "127.0.0.1:"+port, uint64(w)) })
	}

	// Warm up, then take the baseline the end is compared with.
	time.Sleep(min(dur/6, 10*time.Second))
	base := map[string]procFigures{"destination": figures(t, d.lab.A, dst), "source": figures(t, d.lab.B, src)}

	// Restart something every few seconds until the time is up.
	restarts := 0
	for i := 0; ctx.Err() == nil; i++ {
		select {
		case <-ctx.Done():
		case <-time.After(min(dur/8, 8*time.Second)):
		}
		if ctx.Err() != nil {
			break
		}
		switch i % 3 {
		case 0:
			_ = relay.Stop()
			relay = d.lab.Server.Start(t, fmt.Sprintf("relay-%d", i), connetBin, "relay", "--config", d.path("relay.toml"))
		case 1:
			_ = d.server.Stop()
			d.server = d.lab.Server.Start(t, fmt.Sprintf("control-%d", i), connetBin, "control", "--config", d.path("control.toml"))
		case 2:
			_ = dst.Kill()
			dst = d.startClient(d.lab.A, fmt.Sprintf("destination-%d", i), d.path("destination.toml"))
		}
		restarts++
	}
	workers.Wait()
	if s.corrupted.Load() > 0 {
		t.Fatalf("%d transfers came back corrupted", s.corrupted.Load())
	}
	if s.ok.Load() == 0 {
		t.Fatal("no transfer succeeded")
	}

	// The source never restarted: compare it with its baseline once its
	// connections have closed. The destination restarted: it must be back
	// near the first one's figures.
	var end map[string]procFigures
	settled := func() bool {
		end = map[string]procFigures{"destination": figures(t, d.lab.A, dst), "source": figures(t, d.lab.B, src)}
		for name, e := range end {
			b := base[name]
			if e.goroutines > b.goroutines+soakGoroutineSlack || e.fds > b.fds+soakFDSlack || e.rss > b.rss+soakRSSSlack {
				return false
			}
		}
		return true
	}
	// Connections to the killed destination's old process close at the
	// idle timeout (30 s), and their goroutines with them: the wait
	// outlasts it, so the slack can be small enough to catch a leak of a
	// few goroutines per restart.
	deadline := time.Now().Add(tuning.IdleTimeout + 20*time.Second)
	for !settled() && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	for _, name := range []string{"source", "destination"} {
		t.Logf("MEASURE soak %s: goroutines %d→%d fds %d→%d rss_MiB %.1f→%.1f", name,
			base[name].goroutines, end[name].goroutines, base[name].fds, end[name].fds,
			float64(base[name].rss)/(1<<20), float64(end[name].rss)/(1<<20))
	}
	t.Logf("MEASURE soak duration=%v connections=%d ok=%d failed=%d corrupted=%d MiB=%.0f restarts=%d",
		dur, s.conns.Load(), s.ok.Load(), s.failed.Load(), s.corrupted.Load(), float64(s.bytes.Load())/(1<<20), restarts)
	if !settled() {
		t.Fatalf("a client did not come back to its bounds (goroutines +%d, fds +%d, RSS +%d MiB): before %+v, after %+v",
			soakGoroutineSlack, soakFDSlack, soakRSSSlack>>20, base, end)
	}
}

type soakStats struct {
	conns, ok, failed, corrupted, bytes atomic.Int64
}

// work echoes random data of random sizes (1 KiB to 1 MiB) through the
// source at addr until ctx ends, counting what happened.
func (s *soakStats) work(ctx context.Context, h *natlab.Host, addr string, seed uint64) {
	rnd := rand.New(rand.NewPCG(seed, 42))
	for ctx.Err() == nil {
		n := 1<<10 + rnd.IntN(1<<20)
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
		s.conns.Add(1)
		got, err := echoOnce(ctx, h, addr, data)
		switch {
		case err != nil:
			s.failed.Add(1)
			time.Sleep(50 * time.Millisecond)
		case !bytes.Equal(got, data):
			s.corrupted.Add(1)
		default:
			s.ok.Add(1)
			s.bytes.Add(int64(2 * n))
		}
	}
}

// echoOnce sends data through addr, half-closes, and reads the echo.
func echoOnce(ctx context.Context, h *natlab.Host, addr string, data []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := h.DialTCP(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	werr := make(chan error, 1)
	go func() {
		_, err := conn.Write(data)
		if err == nil {
			err = conn.(interface{ CloseWrite() error }).CloseWrite()
		}
		werr <- err
	}()
	var buf bytes.Buffer
	_, rerr := io.Copy(&buf, io.LimitReader(conn, int64(len(data))+1))
	if err := <-werr; err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, rerr
	}
	if buf.Len() != len(data) {
		// A short echo is a failed transfer (the tunnel broke), unless
		// the bytes that did arrive differ: that is corruption.
		if !bytes.HasPrefix(data, buf.Bytes()) {
			return buf.Bytes(), nil
		}
		return nil, fmt.Errorf("echo ended after %d of %d bytes", buf.Len(), len(data))
	}
	return buf.Bytes(), nil
}

type procFigures struct {
	goroutines, fds int
	rss             int64
}

// figures reads a client's goroutines (from its status), open files and
// RSS (from /proc).
func figures(t *testing.T, h *natlab.Host, p *natlab.Proc) procFigures {
	t.Helper()
	var f procFigures
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, err := status(ctx, h); err == nil {
		f.goroutines = st.Goroutines
	}
	if fds, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(p.PID()), "fd")); err == nil {
		f.fds = len(fds)
	}
	if b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.PID()), "status")); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				f.rss = kb << 10
			}
		}
	}
	return f
}
