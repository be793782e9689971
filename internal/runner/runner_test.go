package runner_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/p2pconnet/connet/internal/runner"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestFailureEndsTheOthers: a part's failure cancels the others' context,
// Run waits for them, and returns the failure.
func TestFailureEndsTheOthers(t *testing.T) {
	boom := errors.New("boom")
	ended := make(chan struct{})
	err := runner.Run(context.Background(),
		func(ctx context.Context) error { <-ctx.Done(); close(ended); return nil },
		func(context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Run returned %v, want the failure", err)
	}
	select {
	case <-ended:
	default:
		t.Fatal("Run returned before the other part")
	}
}

// TestDoneIsNotTheEnd: a part that returns nil leaves the others running
// until ctx is cancelled, and then Run returns nil.
func TestDoneIsNotTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- runner.Run(ctx,
				func(context.Context) error { return nil },
				func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Run returned (%v) while a part was running", err)
		default:
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run after cancel: %v, want nil", err)
		}
	})
}
