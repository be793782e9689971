package acceptloop

import (
	"errors"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"
)

// scriptedListener answers Accept with the errors of its script, in turn,
// a connection for each nil, and net.ErrClosed once the script is done.
type scriptedListener struct {
	net.Listener
	script []error
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	if len(l.script) == 0 {
		return nil, net.ErrClosed
	}
	err := l.script[0]
	l.script = l.script[1:]
	if err != nil {
		return nil, err
	}
	c, _ := net.Pipe()
	return c, nil
}

// TestRunRetriesUntilClosed: failures of any kind are retried with waits
// that double from RetryMin up to RetryMax and start over after a success;
// the loop ends when the listener is closed.
func TestRunRetriesUntilClosed(t *testing.T) {
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	var script []error
	for range 10 {
		script = append(script, emfile)
	}
	script = append(script, nil, syscall.ENOBUFS, syscall.ECONNABORTED, nil)
	ln := &scriptedListener{script: script}
	handled := 0
	var waits []time.Duration
	Run(ln, nil, func(c net.Conn) { handled++; _ = c.Close() }, func(err error, wait time.Duration) { waits = append(waits, wait) })
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 5, 10}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(waits, want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	if handled != 2 {
		t.Fatalf("%d connections handled, want 2", handled)
	}
}

// TestRunStops: closing stop ends a loop that is waiting to retry.
func TestRunStops(t *testing.T) {
	// Failing for good: without stop, Run would wait out all of them.
	ln := &scriptedListener{script: slices.Repeat([]error{errors.New("failing")}, 100)}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ln, stop, func(net.Conn) {}, func(error, time.Duration) { close(stop) })
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run still waiting 10 s after stop")
	}
}
