package logs

import (
	"sync"
	"time"
)

// DefaultRepeatQuiet is how long Repeats holds back a cause after its line.
const DefaultRepeatQuiet = 10 * time.Minute

// maxRepeatCauses bounds the causes Repeats remembers: causes are error
// texts, and a flood of distinct ones must not grow memory.
const maxRepeatCauses = 64

// Repeats decides which lines of a repeating failure to log: the first of
// each distinct cause, then one per quiet period while it goes on, so that
// a failure that hits every connection (a service refusing them all) gives
// a line when it starts or changes, not one per connection. With a single
// cause ("") it is a plain rate limit, a line per quiet period, for what a
// flood can repeat at will. The zero value is ready to use; it is safe
// for concurrent use.
type Repeats struct {
	// Quiet is how long a cause is held back after its line; zero means
	// DefaultRepeatQuiet.
	Quiet time.Duration

	mu   sync.Mutex
	seen map[string]*repeat
}

// repeat is what Repeats knows of one cause.
type repeat struct {
	logged  time.Time
	skipped int
}

// Allow tells whether a line about cause is due at now, and how many
// lines about it were held back since its last one (to say so in the
// line).
func (r *Repeats) Allow(cause string, now time.Time) (ok bool, skipped int) {
	quiet := r.Quiet
	if quiet <= 0 {
		quiet = DefaultRepeatQuiet
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.seen[cause]; c != nil {
		if now.Sub(c.logged) < quiet {
			c.skipped++
			return false, 0
		}
		skipped = c.skipped
		c.logged, c.skipped = now, 0
		return true, skipped
	}
	if r.seen == nil {
		r.seen = map[string]*repeat{}
	}
	if len(r.seen) >= maxRepeatCauses {
		for k, c := range r.seen {
			if now.Sub(c.logged) >= quiet {
				delete(r.seen, k)
			}
		}
		if len(r.seen) >= maxRepeatCauses {
			// All recent: forgetting them costs a line each if they recur.
			clear(r.seen)
		}
	}
	r.seen[cause] = &repeat{logged: now}
	return true, 0
}
