package natlab

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the test binary as a helper program when asked to (see
// helperMain); otherwise the tests must leave no goroutine behind once
// what they started has stopped.
func TestMain(m *testing.M) {
	if mode := os.Getenv("NATLAB_HELPER"); mode != "" {
		os.Exit(helperMain(mode, os.Args[len(os.Args)-1]))
	}
	goleak.VerifyTestMain(m)
}
