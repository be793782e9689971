package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// connetBin is the binary under test, built once for the package.
var connetBin string

// TestMain builds the binary, or with CONNET_E2E_BIN set uses that one
// (scripts/reach.sh measures an older build with today's tests that way);
// with CONNET_E2E_SERVICE set the process is a measured service instead
// (see startService).
func TestMain(m *testing.M) {
	if spec := os.Getenv(serviceEnv); spec != "" {
		// This process is a measured service, not a test run.
		err := runService(spec)
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(1)
	}
	if bin := os.Getenv("CONNET_E2E_BIN"); bin != "" {
		connetBin = bin
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "connet-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	connetBin = filepath.Join(dir, "connet")
	build := exec.Command("go", "build", "-o", connetBin, "../cmd/connet")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building connet:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
