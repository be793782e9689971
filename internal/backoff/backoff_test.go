package backoff

import (
	"testing"
	"time"
)

func TestBackoffGrowsWithinBounds(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	ceiling := b.Min
	for range 20 {
		d := b.Next()
		if d < ceiling/2 || d > ceiling {
			t.Fatalf("delay %v outside [%v, %v]", d, ceiling/2, ceiling)
		}
		ceiling = min(ceiling*2, b.Max)
	}
	b.Reset()
	if d := b.Next(); d > b.Min {
		t.Fatalf("after Reset: %v > Min %v", d, b.Min)
	}
}
