package quota

import (
	"sync"
	"testing"
)

func TestPendingRefusesBeyondMax(t *testing.T) {
	var p Pending
	var releases []func()
	for i := range 3 {
		release, ok := p.Take(3)
		if !ok {
			t.Fatalf("stream %d of 3 refused", i+1)
		}
		releases = append(releases, release)
	}
	if _, ok := p.Take(3); ok {
		t.Fatal("a fourth stream was taken with a quota of 3")
	}
	if got := p.Held(); got != 3 {
		t.Fatalf("held %d after a refusal, want 3", got)
	}
	// Releasing twice counts once.
	releases[0]()
	releases[0]()
	if got := p.Held(); got != 2 {
		t.Fatalf("held %d after one release (called twice), want 2", got)
	}
	if _, ok := p.Take(3); !ok {
		t.Fatal("a stream was refused after one was released")
	}
}

func TestPendingHoldsUnderConcurrentTakes(t *testing.T) {
	var p Pending
	const max, tries = 50, 400
	var (
		mu       sync.Mutex
		releases []func()
		wg       sync.WaitGroup
	)
	for range tries {
		wg.Go(func() {
			if release, ok := p.Take(max); ok {
				mu.Lock()
				releases = append(releases, release)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(releases) != max || p.Held() != max {
		t.Fatalf("%d taken, %d held; want %d of each", len(releases), p.Held(), max)
	}
	for _, r := range releases {
		r()
	}
	if got := p.Held(); got != 0 {
		t.Fatalf("held %d after every release, want 0", got)
	}
}

func TestMaxDefaults(t *testing.T) {
	for in, want := range map[int]int{0: DefaultMaxPending, -1: DefaultMaxPending, 7: 7} {
		if got := Max(in); got != want {
			t.Errorf("Max(%d) = %d, want %d", in, got, want)
		}
	}
}
