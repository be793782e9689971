package logs

import (
	"fmt"
	"testing"
	"time"
)

func TestRepeatsOnePerCauseAndQuietPeriod(t *testing.T) {
	r := Repeats{Quiet: time.Minute}
	start := time.Unix(1000, 0)
	allow := func(cause string, after time.Duration) (bool, int) { return r.Allow(cause, start.Add(after)) }

	if ok, _ := allow("refused", 0); !ok {
		t.Fatal("first line of a cause held back")
	}
	for i := range 100 {
		if ok, _ := allow("refused", time.Duration(i)*time.Millisecond); ok {
			t.Fatalf("repeat %d logged within the quiet period", i)
		}
	}
	// Another cause is logged at once, and does not end the first one's
	// quiet period.
	if ok, _ := allow("certificate required", time.Second); !ok {
		t.Fatal("a new cause held back")
	}
	if ok, _ := allow("refused", 2*time.Second); ok {
		t.Fatal("the old cause logged again after another one")
	}
	// After the quiet period, one line says how many were held back.
	ok, skipped := allow("refused", time.Minute)
	if !ok || skipped != 101 {
		t.Fatalf("after the quiet period: logged %v, skipped %d; want a line and 101", ok, skipped)
	}
	if ok, _ := allow("refused", time.Minute+time.Second); ok {
		t.Fatal("a new quiet period did not start")
	}
}

func TestRepeatsBoundsItsMemory(t *testing.T) {
	var r Repeats
	now := time.Unix(1000, 0)
	for i := range 10 * maxRepeatCauses {
		if ok, _ := r.Allow(fmt.Sprint("cause ", i), now); !ok {
			t.Fatalf("new cause %d held back", i)
		}
		if len(r.seen) > maxRepeatCauses {
			t.Fatalf("%d causes remembered, at most %d", len(r.seen), maxRepeatCauses)
		}
	}
}
