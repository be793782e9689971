// Package backoff computes jittered exponential retry delays, so that many
// clients that lost the same server do not come back in lockstep.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff yields delays that double from Min up to Max, each drawn
// uniformly from [d/2, d] ("equal jitter"). The zero value is not usable.
type Backoff struct {
	Min, Max time.Duration
	attempt  int
}

// Next returns the delay before the next attempt.
func (b *Backoff) Next() time.Duration {
	d := b.Min << min(b.attempt, 30)
	if d <= 0 || d > b.Max {
		d = b.Max
	} else {
		b.attempt++
	}
	half := d / 2
	return half + rand.N(half+1)
}

// Reset starts over from Min, after a success.
func (b *Backoff) Reset() { b.attempt = 0 }
