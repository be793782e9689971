package direct

import (
	"testing"

	"go.uber.org/goleak"
)

// Dials and the node's own goroutines must all be gone after the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
