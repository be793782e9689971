package muxconn

import (
	"errors"
	"testing"
)

// TestWindowBudget: the accounting behind Admit. Before admission two
// streams get their initial windows and nothing grows; after it, growth
// takes at most half the budget, and what a stream held goes back when it
// ends, once.
func TestWindowBudget(t *testing.T) {
	b := &windowBudget{}
	span := func() *streamWindow {
		t.Helper()
		mm, err := b.span()
		if err != nil {
			t.Fatal(err)
		}
		return mm.(*streamWindow)
	}
	reserve := func(s *streamWindow, n int, want error) {
		t.Helper()
		if err := s.ReserveMemory(n, 128); !errors.Is(err, want) {
			t.Fatalf("reserve %d: %v, want %v", n, err, want)
		}
	}
	s1, s2, s3 := span(), span(), span()
	reserve(s1, StreamWindow, nil)
	reserve(s2, StreamWindow, nil)
	reserve(s3, StreamWindow, errNotAdmitted)
	reserve(s1, StreamWindow, errNotAdmitted)

	const limit = 8 << 20
	b.admit(limit)
	reserve(s3, StreamWindow, nil)
	reserve(s1, 2<<20, nil)
	reserve(s2, 2<<20, nil)
	reserve(s3, 1, errWindowBudget) // growth is at half the budget
	s4 := span()
	reserve(s4, StreamWindow, nil) // a new stream is never refused here
	if got, want := b.room(), int64(limit-4*StreamWindow-4<<20); got != want {
		t.Fatalf("room %d, want %d", got, want)
	}
	s1.Done()
	s1.Done()
	reserve(s3, 2<<20, nil)
	if got, want := b.room(), int64(limit-3*StreamWindow-4<<20); got != want {
		t.Fatalf("room after a stream ended %d, want %d", got, want)
	}
	for _, s := range []*streamWindow{s2, s3, s4} {
		s.Done()
	}
	if b.reserved != 0 || b.grown != 0 || b.streams != 0 {
		t.Fatalf("after every stream ended: reserved %d, grown %d, streams %d", b.reserved, b.grown, b.streams)
	}
}
