package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestLoopback builds the program and runs every workload as
// scripts/bench.sh and the e2e tests do, over QUIC and over TCP, with both
// ends on loopback in two processes. Each must exit 0 with its figure,
// which is printed only once the receiver has answered: bulk's byte count
// acknowledged, every request's response read in full, every connect
// stream's end seen.
func TestLoopback(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "quicceiling")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	const num = `[0-9]+(\.[0-9]+)?`
	for _, over := range []string{"quic", "tcp"} {
		for _, tc := range []struct {
			args   []string
			figure string
		}{
			{[]string{"-mode", "bulk"}, `streams=1 MBps=` + num},
			{[]string{"-mode", "bulk", "-streams", "3"}, `streams=3 MBps=` + num},
			{[]string{"-mode", "requests", "-streams", "4"}, `streams=4 rps=` + num + ` p50_ms=` + num + ` p99_ms=` + num},
			{[]string{"-mode", "connect"}, `count=[1-9][0-9]* p50_ms=` + num + ` p99_ms=` + num},
		} {
			args := append(tc.args, "-over", over, "-duration", "300ms")
			out, err := exec.Command(bin, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %v\n%s", args, err, out)
			}
			want := regexp.MustCompile(`(?m)^quicceiling mode=` + tc.args[1] + ` over=` + over + ` ` + tc.figure + `$`)
			if !want.Match(out) {
				t.Fatalf("%v printed %q, want a line matching %s", args, out, want)
			}
		}
	}
	// Usage errors are reported, not measured.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-listen", "127.0.0.1:0", "-dial", "127.0.0.1:1"}, "exclude each other"},
		{[]string{"-mode", "pingpong"}, "want bulk, requests or connect"},
		{[]string{"-over", "sctp"}, "want quic or tcp"},
		{[]string{"-dial", "127.0.0.1:1", "-cert", "00", "-over", "tcp"}, "-over tcp needs -tcp-addr"},
	} {
		out, err := exec.Command(bin, tc.args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Fatalf("%v: %v, %q; want a usage error saying %q", tc.args, err, out, tc.want)
		}
	}
}
