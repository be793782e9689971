package peer

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the registry starts must be gone once Close returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
