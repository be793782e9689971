package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// profiled runs measure under a system-wide perf recording when
// CONNET_BENCH_PERF names a directory: the profile of phase goes to
// DIR/phase.data, for `perf report -i DIR/phase.data --sort comm,sym`.
// Without it (or without perf) measure just runs. The recording covers
// the whole machine because the phase's work is spread over the test
// process (both TCP ends), two clients and possibly the relay.
func profiled[T any](t *testing.T, phase string, measure func() T) T {
	t.Helper()
	dir := os.Getenv("CONNET_BENCH_PERF")
	if dir == "" {
		return measure()
	}
	perf, err := exec.LookPath("perf")
	if err != nil {
		t.Logf("CONNET_BENCH_PERF set but perf is not installed: %v", err)
		return measure()
	}
	cmd := exec.Command(perf, "record", "-a", "-g", "-q", "-o", filepath.Join(dir, phase+".data"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start perf: %v", err)
	}
	defer func() {
		// perf writes its file when interrupted.
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	}()
	return measure()
}
