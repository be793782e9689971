package testwait

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestUntil: Until tells whether the condition came true within the limit,
// checking it until then (simulated time).
func TestUntil(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		became := func(after time.Duration) func() bool {
			return func() bool { return time.Since(start) >= after }
		}
		if !Until(time.Second, became(500*time.Millisecond)) {
			t.Error("a condition that came true within the limit was missed")
		}
		start = time.Now()
		if Until(time.Second, became(2*time.Second)) {
			t.Error("a condition that came true after the limit was reported held")
		}
		if got := time.Since(start); got < time.Second {
			t.Errorf("gave up after %v, before the limit", got)
		}
	})
}

// recorder is a testing.TB that records a failure instead of stopping.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
}

// TestForFails: For fails its test when the condition never holds, and
// not when it does.
func TestForFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{TB: t}
		For(r, time.Second, func() bool { return true }, "nothing")
		if r.failed != "" {
			t.Fatalf("failed on a condition that held: %s", r.failed)
		}
		For(r, time.Second, func() bool { return false }, "%s", "never")
		if r.failed == "" {
			t.Fatal("did not fail on a condition that never held")
		}
	})
}
