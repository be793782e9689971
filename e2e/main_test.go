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

func TestMain(m *testing.M) {
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
