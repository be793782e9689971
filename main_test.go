package connet_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Clients, servers and relays must leave no goroutine behind once Close
// or Run returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
