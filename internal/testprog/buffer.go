package testprog

import (
	"strings"
	"sync"
)

// LockedBuffer collects output (a child's, a logger's) written from
// several goroutines while the test reads it; the zero value is ready.
type LockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
