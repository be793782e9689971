package e2e

import (
	"context"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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

// ceilingFigure is a figure on quicceiling's last line ("NAME=NUMBER").
var ceilingFigure = regexp.MustCompile(`\b([a-zA-Z0-9_]+)=([0-9.]+)\b`)

// quicCeiling measures one QUIC connection from a process in from to one
// in to (bench/quicceiling, the tunnel's QUIC and TLS settings, no TCP
// legs) carrying streams parallel streams for benchDuration, and returns
// its MB/s.
func quicCeiling(t *testing.T, bin string, from, to *natlab.Host, streams int) float64 {
	t.Helper()
	return runCeiling(t, bin, from, to, "-mode", "bulk", "-streams", strconv.Itoa(streams))["MBps"]
}

// runCeiling runs bench/quicceiling's sender in from, with args, against a
// receiver in to for benchDuration, and returns the figures of its last
// line by name (MBps, rps, p50_ms, ...). A figure of 0 fails the test:
// nothing was carried.
func runCeiling(t *testing.T, bin string, from, to *natlab.Host, args ...string) map[string]float64 {
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
	f := strings.Fields(announced)
	if len(f) != 3 {
		t.Fatalf("quicceiling receiver announced %q, want \"ADDR CERT TCPADDR\"", announced)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append([]string{bin, "-dial", f[0], "-cert", f[1], "-tcp-addr", f[2], "-duration", benchDuration.String()}, args...)
	out, err := from.Run(ctx, argv...)
	if err != nil {
		t.Fatalf("quicceiling %v %s→%s: %v", args, from.Name, to.Name, err)
	}
	last := strings.TrimSpace(out)
	if i := strings.LastIndexByte(last, '\n'); i >= 0 {
		last = last[i+1:]
	}
	figures := map[string]float64{}
	for _, m := range ceilingFigure.FindAllStringSubmatch(last, -1) {
		v, _ := strconv.ParseFloat(m[2], 64) // the pattern admits only numbers
		figures[m[1]] = v
	}
	if len(figures) == 0 || slices.Contains(slices.Collect(maps.Values(figures)), 0) {
		t.Fatalf("quicceiling %v %s→%s printed %q: a figure is missing or 0", args, from.Name, to.Name, out)
	}
	// The receiver ends on its own once the sender closes the connection.
	if err := recv.Wait(ctx); err != nil {
		t.Fatalf("quicceiling receiver: %v", err)
	}
	return figures
}
