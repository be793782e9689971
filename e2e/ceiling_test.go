package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/natlab"
)

// ceilingBin returns bench/quicceiling: the one scripts/bench.sh built
// (CONNET_CEILING_BIN), or a fresh build.
func ceilingBin(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("CONNET_CEILING_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "quicceiling")
	out, err := exec.Command("go", "build", "-o", bin, "../bench/quicceiling").CombinedOutput()
	if err != nil {
		t.Fatalf("build bench/quicceiling: %v\n%s", err, out)
	}
	return bin
}

var ceilingFigure = regexp.MustCompile(`quicceiling streams=\d+ MBps=([0-9.]+)`)

// quicCeiling measures one QUIC connection from a process in from to one
// in to (bench/quicceiling, the tunnel's QUIC and TLS settings, no TCP
// legs) carrying streams parallel streams for benchDuration, and returns
// its MB/s.
func quicCeiling(t *testing.T, bin string, from, to *natlab.Host, streams int) float64 {
	t.Helper()
	recv := to.Start(t, "quicceiling-receiver", bin, "-listen", net.JoinHostPort(to.Addr.String(), "0"))
	var announced string
	deadline := time.Now().Add(10 * time.Second)
	for {
		if line, _, ok := strings.Cut(recv.Output(), "\n"); ok {
			announced = line
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("quicceiling receiver in %s did not announce its address within 10s: %q", to.Name, recv.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	addr, cert, ok := strings.Cut(announced, " ")
	if !ok {
		t.Fatalf("quicceiling receiver announced %q, want \"ADDR CERT\"", announced)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := from.Run(ctx, bin, "-dial", addr, "-cert", cert,
		"-streams", strconv.Itoa(streams), "-duration", benchDuration.String())
	if err != nil {
		t.Fatalf("quicceiling %s→%s: %v", from.Name, to.Name, err)
	}
	m := ceilingFigure.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("quicceiling printed %q, no figure", out)
	}
	mbps, _ := strconv.ParseFloat(m[1], 64) // the pattern admits only numbers
	if mbps == 0 {
		t.Fatalf("quicceiling %s→%s carried nothing", from.Name, to.Name)
	}
	// The receiver ends on its own once the sender closes the connection.
	if err := recv.Wait(ctx); err != nil {
		t.Fatalf("quicceiling receiver: %v", err)
	}
	return mbps
}
