// Package notify provides Value, a piece of state that many goroutines read
// and wait on: peer lists, endpoint sets, connection states.
package notify

import (
	"context"
	"sync"
)

// Value holds a T and wakes every waiter when it changes. The zero Value
// holds the zero T and is ready to use.
type Value[T any] struct {
	mu      sync.Mutex
	v       T
	changed chan struct{}
}

// Get returns the current value and a channel that is closed at the next
// change, so a caller can act on a value and then wait for the next one
// without missing an update in between.
func (v *Value[T]) Get() (T, <-chan struct{}) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.changed == nil {
		v.changed = make(chan struct{})
	}
	return v.v, v.changed
}

// Load returns the current value.
func (v *Value[T]) Load() T {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.v
}

// Set replaces the value and wakes the waiters.
func (v *Value[T]) Set(t T) {
	v.Update(func(T) T { return t })
}

// Update replaces the value with fn's result, atomically with respect to
// other updates. fn must not block or call back into v.
func (v *Value[T]) Update(fn func(T) T) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.v = fn(v.v)
	if v.changed != nil {
		close(v.changed)
		v.changed = nil
	}
}

// Wait blocks until ok accepts the value or ctx ends; it returns the value
// that was accepted.
func (v *Value[T]) Wait(ctx context.Context, ok func(T) bool) (T, error) {
	for {
		t, changed := v.Get()
		if ok(t) {
			return t, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			var zero T
			return zero, context.Cause(ctx)
		}
	}
}
