// Package testwait waits in tests for something that happens on other
// goroutines or in other processes, polling for it within a limit, so that
// a test checks the event itself rather than sleeping and hoping. In a
// synctest bubble the limit and the polling run on the bubble's clock.
package testwait

import (
	"testing"
	"time"
)

// every is how often the condition is polled.
const every = 20 * time.Millisecond

// Until polls cond until it holds or limit has passed, and tells whether
// it held.
func Until(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
	return true
}

// For fails t unless cond holds within limit; format and args say what
// was awaited.
func For(t testing.TB, limit time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if !Until(limit, cond) {
		t.Fatalf("waited %v for "+format, append([]any{limit}, args...)...)
	}
}
