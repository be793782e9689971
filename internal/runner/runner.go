// Package runner runs the parts of a server or relay process together,
// each in a goroutine of its own, and waits for all of them.
package runner

import (
	"context"
	"errors"
	"sync"
)

// Run runs each part until ctx ends or a part fails; a failure ends the
// others' context. A part that returns nil is done, and the others go on.
// Run returns once every part has: nil if ctx was cancelled, else the
// first failure (or ctx's cause, such as its deadline).
func Run(ctx context.Context, parts ...func(context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, part := range parts {
		wg.Go(func() {
			if err := part(ctx); err != nil {
				cancel(err)
			}
		})
	}
	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
