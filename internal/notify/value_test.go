package notify

import (
	"context"
	"testing"
	"time"
)

func TestGetSeesNextChange(t *testing.T) {
	var v Value[int]
	got, changed := v.Get()
	if got != 0 {
		t.Fatalf("zero value: got %d", got)
	}
	v.Set(7)
	select {
	case <-changed:
	default:
		t.Fatal("Set did not close the channel handed out before it")
	}
	if v.Load() != 7 {
		t.Fatalf("Load after Set: got %d, want 7", v.Load())
	}
}

func TestWait(t *testing.T) {
	var v Value[int]
	done := make(chan int)
	go func() {
		got, err := v.Wait(context.Background(), func(n int) bool { return n >= 3 })
		if err != nil {
			t.Error(err)
		}
		done <- got
	}()
	for i := 1; i <= 3; i++ {
		v.Update(func(n int) int { return n + 1 })
	}
	if got := <-done; got != 3 {
		t.Fatalf("Wait returned %d, want 3", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := v.Wait(ctx, func(n int) bool { return n > 100 }); err == nil {
		t.Fatal("Wait returned without error after its context ended")
	}
}
