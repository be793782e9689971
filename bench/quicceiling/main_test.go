package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestLoopback builds the program and runs it as scripts/bench.sh does:
// both ends on loopback in two processes, one stream and several. It must
// exit 0 with a figure, which it prints only once the receiver
// acknowledged what was sent.
func TestLoopback(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "quicceiling")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	figure := regexp.MustCompile(`(?m)^quicceiling streams=(\d+) MBps=[0-9]+$`)
	for _, streams := range []string{"1", "3"} {
		out, err := exec.Command(bin, "-streams", streams, "-duration", "300ms").CombinedOutput()
		if err != nil {
			t.Fatalf("-streams %s: %v\n%s", streams, err, out)
		}
		m := figure.FindStringSubmatch(string(out))
		if m == nil || m[1] != streams {
			t.Fatalf("-streams %s printed %q, want a figure for %s streams", streams, out, streams)
		}
	}
	// Both modes at once is a usage error, not a measurement.
	out, err := exec.Command(bin, "-listen", "127.0.0.1:0", "-dial", "127.0.0.1:1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "exclude each other") {
		t.Fatalf("-listen with -dial: %v, %q; want a usage error", err, out)
	}
}
