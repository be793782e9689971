package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
)

// TestRestartSequenceUnderLoad restarts the relay and, a moment later, the
// control server of a split deployment, again and again, with the CPU kept
// busy, and checks each time that both clients are back and the relayed
// tunnel works. Every other round the control server is killed and stays
// down until both clients have noticed: no CONNECTION_CLOSE reaches them
// and nothing answers their keepalives, so they must give up on the
// silence themselves, well before the QUIC idle timeout (30 s) that
// pathLimit undercuts. Rounds: CONNET_RESTARTS, default 6.
func TestRestartSequenceUnderLoad(t *testing.T) {
	rounds := 6
	if n, err := strconv.Atoi(os.Getenv("CONNET_RESTARTS")); err == nil && n > 0 {
		rounds = n
	}
	d, startRelay := splitDeployment(t, natlab.BothSymmetric)
	relay := startRelay()
	body := randomBody(t, 256<<10)
	d.serveHTTP(body)
	d.startDestination("any")
	d.startSource("any")
	if _, err := d.fetchEventually(body, fetchLimit); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var burners sync.WaitGroup
	for range runtime.NumCPU() {
		burners.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					for i := 0; i < 1e5; i++ {
						_ = i * i
					}
				}
			}
		})
	}
	defer func() { close(stop); burners.Wait() }()

	connected := func(st connet.ClientStatus) bool { return st.Control.Connected }
	var slowest time.Duration
	for round := range rounds {
		kill := round%2 == 1
		if err := relay.Stop(); err != nil {
			t.Logf("relay exit: %v", err)
		}
		relay = d.lab.Server.Start(t, fmt.Sprintf("relay-%d", round), connetBin, "relay", "--config", d.path("relay.toml"))
		time.Sleep(50 * time.Millisecond)
		stopControl := d.server.Stop
		if kill {
			stopControl = d.server.Kill
		}
		if err := stopControl(); err != nil {
			t.Logf("control exit: %v", err)
		}
		if kill {
			down := func(st connet.ClientStatus) bool { return !st.Control.Connected }
			for _, h := range []*natlab.Host{d.lab.A, d.lab.B} {
				if _, took, err := waitStatus(h, pathLimit, down); err != nil {
					t.Fatalf("round %d: a killed control server was not noticed: %v", round, err)
				} else {
					t.Logf("round %d: %s noticed the dead control server after %v", round, h.Name, took.Round(time.Millisecond))
				}
			}
		}
		restarted := time.Now()
		d.server = d.lab.Server.Start(t, fmt.Sprintf("control-%d", round), connetBin, "control", "--config", d.path("control.toml"))
		for _, h := range []*natlab.Host{d.lab.A, d.lab.B} {
			if _, _, err := waitStatus(h, pathLimit, connected); err != nil {
				t.Fatalf("round %d (control killed: %v): %v", round, kill, err)
			}
		}
		if _, err := d.fetchEventually(body, fetchLimit); err != nil {
			t.Fatalf("round %d (control killed: %v): %v", round, kill, err)
		}
		back := time.Since(restarted)
		slowest = max(slowest, back)
		t.Logf("round %d: control %s, tunnel back after %v", round, map[bool]string{true: "killed", false: "stopped"}[kill], back.Round(time.Millisecond))
	}
	t.Logf("MEASURE restart_sequence rounds=%d slowest_recovery_ms=%d", rounds, slowest.Milliseconds())

	// While the control server is away, the relay keeps carrying new
	// connections on the paths already established.
	if err := d.server.Stop(); err != nil {
		t.Logf("control exit: %v", err)
	}
	for _, h := range []*natlab.Host{d.lab.A, d.lab.B} {
		if _, _, err := waitStatus(h, pathLimit, func(st connet.ClientStatus) bool { return !st.Control.Connected }); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := d.fetch(ctx)
		cancel()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("relayed fetch %d while the control server is down: %v", i, err)
		}
	}
}
