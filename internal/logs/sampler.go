package logs

import (
	"sync"
	"time"
)

// Sampler lets one log line through per interval and counts the ones it
// holds back, for events a hostile peer can repeat at will (a flood of
// connections refused over a limit): the log then costs a line per
// interval, not a line per event, and still says how many there were.
type Sampler struct {
	every   time.Duration
	mu      sync.Mutex
	next    time.Time
	skipped int
}

// NewSampler lets through at most one line per every.
func NewSampler(every time.Duration) *Sampler { return &Sampler{every: every} }

// Allow tells whether to log an event that happens at now; if so, skipped
// is how many events were held back since the last line that was.
func (s *Sampler) Allow(now time.Time) (ok bool, skipped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Before(s.next) {
		s.skipped++
		return false, 0
	}
	s.next = now.Add(s.every)
	skipped, s.skipped = s.skipped, 0
	return true, skipped
}
