package connet_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/netpath"
)

// TestHostilePeerCannotPileUpStreams is a peer that opens streams to a
// destination and never sends their requests, on its direct path and then
// through a relay, while a healthy peer uses the same destination and a
// healthy tunnel runs beside. The destination holds the hostile peer to
// its quota of waiting streams, across both paths: the count of waiting
// streams stays at the quota, the rest are refused and counted, the
// destination's goroutines stay bounded, the hostile peer's own real
// connection is refused with a clear reason, and the healthy peer never
// fails. When the hostile peer stops, the count drops to zero and its
// connections work again.
func TestHostilePeerCannotPileUpStreams(t *testing.T) {
	h := newHarness(t,
		with(connet.ServerRelayIngress(connet.RelayIngress{Addr: "127.0.0.1:0", Hostports: []string{"127.0.0.1:0"}})))
	healthy := startHealthyTunnel(t, h)
	ctx := context.Background()

	const quota = 32
	dc := h.connect("token-d", connet.ClientStatusAddress("127.0.0.1:0"), connet.ClientMaxPendingStreams(quota))
	dst, err := dc.Destination(ctx, connet.NewDestinationConfig("victim"))
	if err != nil {
		t.Fatal(err)
	}
	go echo(dst)
	hostile := h.connect("token-s")
	hostileSrc, err := hostile.Source(ctx, connet.NewSourceConfig("victim"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := h.connect("token-s").Source(ctx, connet.NewSourceConfig("victim"))
	if err != nil {
		t.Fatal(err)
	}
	// The healthy peer keeps one connection open throughout.
	long := dialEventually(t, good)
	defer long.Close()
	longR := bufio.NewReader(long)
	dialEventually(t, hostileSrc).Close()
	goroutines := runtime.NumGoroutine()

	// Direct: the quota holds, and refusals are counted.
	flood := startStallFlood(t, hostile, dc, false)
	m := waitMetrics(t, dc.StatusAddr(),
		eq("connet_client_streams_pending", quota),
		ge("connet_client_refusals_total", 100, "reason", "pending"))
	// Each waiting stream holds a goroutine at the destination, and a
	// refused one none; without the quota every stream opened in the last
	// 10 s would (thousands).
	grown := runtime.NumGoroutine() - goroutines
	t.Logf("%d more goroutines during the direct flood", grown)
	if grown > quota+300 {
		t.Errorf("%d more goroutines during the flood, want at most %d", grown, quota+300)
	}
	echoOnce(t, good, "healthy peer during a direct flood")
	if err := echoLine(long, longR, "long-lived during a direct flood"); err != nil {
		t.Fatalf("the healthy peer's long-lived connection: %v", err)
	}
	expectPendingRefusal(t, hostileSrc)
	flood.stop(t)
	waitMetrics(t, dc.StatusAddr(), eq("connet_client_streams_pending", 0))

	// Relayed: the same quota, which a direct stream then finds full.
	refused, _ := m.Value("connet_client_refusals_total", "reason", "pending")
	flood = startStallFlood(t, hostile, dc, true)
	waitMetrics(t, dc.StatusAddr(),
		eq("connet_client_streams_pending", quota),
		ge("connet_client_refusals_total", refused+50, "reason", "pending"))
	echoOnce(t, good, "healthy peer during a relayed flood")
	if err := echoLine(long, longR, "long-lived during a relayed flood"); err != nil {
		t.Fatalf("the healthy peer's long-lived connection: %v", err)
	}
	expectPendingRefusal(t, hostileSrc)
	flood.stop(t)
	waitMetrics(t, dc.StatusAddr(), eq("connet_client_streams_pending", 0))

	echoOnce(t, hostileSrc, "the hostile peer after it stopped")
	healthy.stop(t)
}

// stallFlood keeps opening streams that never send their request from one
// client to another, a burst every few hundred milliseconds, so that the
// destination's quota stays full whatever its header timeout does.
type stallFlood struct {
	stopc   chan struct{}
	done    sync.WaitGroup
	mu      sync.Mutex
	streams []netpath.Stream
	opened  atomic.Int64
}

func startStallFlood(t *testing.T, from, to *connet.Client, relayed bool) *stallFlood {
	t.Helper()
	const burst, bursts = 100, 60
	f := &stallFlood{stopc: make(chan struct{})}
	t.Cleanup(func() { f.stop(t) })
	ctx, cancel := context.WithCancel(context.Background())
	f.done.Go(func() {
		defer cancel()
		for range bursts {
			for range burst {
				// Streams over the quota fail here when the destination
				// resets them before the hello (relayed); that is expected.
				s, err := from.StallStream(ctx, to, "victim", relayed)
				if err != nil {
					continue
				}
				f.opened.Add(1)
				f.mu.Lock()
				f.streams = append(f.streams, s)
				f.mu.Unlock()
			}
			select {
			case <-f.stopc:
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	})
	go func() {
		<-f.stopc
		cancel()
	}()
	return f
}

// stop ends the flood and resets every stream it opened.
func (f *stallFlood) stop(t *testing.T) {
	t.Helper()
	select {
	case <-f.stopc:
		return
	default:
		close(f.stopc)
	}
	f.done.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.streams {
		s.Reset()
	}
	f.streams = nil
	if f.opened.Load() == 0 {
		t.Error("the flood opened no stream")
	}
}

// echoOnce opens one connection through src and echoes a line on it.
func echoOnce(t *testing.T, src *connet.Source, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := src.Dial(ctx)
	if err != nil {
		t.Fatalf("%s: dial: %v", what, err)
	}
	defer c.Close()
	if err := echoLine(c, bufio.NewReader(c), what); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// expectPendingRefusal dials through src, whose peer is over its quota at
// the destination: the dial fails at once with the destination's refusal,
// naming the reason. The quota may have a free place for a moment (between
// a waiting stream's timeout and the flood's next burst), so a dial is
// tried a few times.
func expectPendingRefusal(t *testing.T, src *connet.Source) {
	t.Helper()
	var errs []error
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := src.Dial(ctx)
		cancel()
		if err == nil {
			_ = c.Close()
			errs = append(errs, errors.New("dial succeeded"))
			continue
		}
		if errors.Is(err, connet.ErrEndpointRefused) && strings.Contains(err.Error(), "already wait to be answered") {
			return
		}
		errs = append(errs, err)
	}
	t.Fatalf("a dial of the peer over its quota: %v; want a refusal for waiting connections", errors.Join(errs...))
}

// TestDestinationTakesABrowserBurst opens a burst of 200 connections, as a
// browser loading pages does, that all wait at once at the destination
// for its service's dial: with the default quota none is refused.
func TestDestinationTakesABrowserBurst(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dc := h.connect("token-d", connet.ClientStatusAddress("127.0.0.1:0"))
	dst, err := dc.Destination(ctx, connet.NewDestinationConfig("web"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := h.connect("token-s").Source(ctx, connet.NewSourceConfig("web"))
	if err != nil {
		t.Fatal(err)
	}

	const burst = 200
	// Once the burst starts, the service answers no dial until all of the
	// burst's are waiting.
	var (
		started atomic.Bool
		dials   atomic.Int64
	)
	all := make(chan struct{})
	served := make(chan error, 1)
	go func() {
		served <- dst.Serve(ctx, func(ctx context.Context, _ netip.AddrPort) (net.Conn, error) {
			if started.Load() {
				if dials.Add(1) == burst {
					close(all)
				}
				select {
				case <-all:
				case <-time.After(20 * time.Second):
					return nil, errors.New("the burst never all arrived")
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			a, b := net.Pipe()
			go func() { _, _ = b.Read(make([]byte, 1)); _ = b.Close() }()
			return a, nil
		})
	}()
	// The peers find each other first.
	dialEventually(t, src).Close()
	started.Store(true)

	var wg sync.WaitGroup
	errs := make(chan error, burst)
	for i := range burst {
		wg.Go(func() {
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			c, err := src.Dial(dctx)
			if err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
				return
			}
			_ = c.Close()
		})
	}
	wg.Wait()
	close(errs)
	var failed []error
	for err := range errs {
		failed = append(failed, err)
	}
	if len(failed) > 0 {
		t.Fatalf("%d of %d connections failed: %v", len(failed), burst, errors.Join(failed...))
	}
	waitMetrics(t, dc.StatusAddr(),
		eq("connet_client_refusals_total", 0, "reason", "pending"),
		eq("connet_client_streams_pending", 0))
	cancel()
	if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("serve: %v", err)
	}
}
