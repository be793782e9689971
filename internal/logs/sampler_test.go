package logs

import (
	"testing"
	"time"
)

// TestSampler: one line per interval gets through, and the next one that
// does says how many were held back meanwhile.
func TestSampler(t *testing.T) {
	s := NewSampler(time.Second)
	start := time.Now()
	if ok, skipped := s.Allow(start); !ok || skipped != 0 {
		t.Fatalf("first event: %v, %d skipped; want logged, 0", ok, skipped)
	}
	for i := range 5 {
		if ok, _ := s.Allow(start.Add(time.Duration(i) * 100 * time.Millisecond)); ok {
			t.Fatalf("event %d within the interval logged", i)
		}
	}
	if ok, skipped := s.Allow(start.Add(time.Second)); !ok || skipped != 5 {
		t.Fatalf("event after the interval: %v, %d skipped; want logged, 5", ok, skipped)
	}
	if ok, _ := s.Allow(start.Add(1500 * time.Millisecond)); ok {
		t.Fatal("event within the next interval logged")
	}
}
