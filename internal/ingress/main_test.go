package ingress_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The tests must leave no goroutine behind once what they started has
// stopped.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
