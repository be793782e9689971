package redial

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pconnet/connet/internal/untrusted"
)

// recorder keeps the level and message of each line logged.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, rec.Level.String()+" "+rec.Message)
	return nil
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lines)
}

var errRefused = errors.New("refused")

func newLoop(log *recorder) *Loop {
	return &Loop{
		Min: 100 * time.Millisecond, Max: time.Second,
		Logger:    slog.New(log),
		Unreached: "unreached", Lost: "lost",
		Refused: errRefused, RefusedMsg: "refusal",
		TrustAddr: "192.0.2.1:1", UntrustedMsg: "untrusted",
	}
}

var errUntrusted = fmt.Errorf("dial: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}})

// script answers the loop's attempts in turn: connect first (call
// connected) if the step says so, then fail with its error.
type step struct {
	connect bool
	err     error
}

func script(steps ...step) (Attempt, *int) {
	n := new(int)
	return func(ctx context.Context, connected func()) error {
		s := steps[*n]
		*n++
		if s.connect {
			connected()
		}
		return s.err
	}, n
}

// TestUnreachedThenLost: failures are retried, logged as unreached until
// an attempt connects and as lost after; a refusal ends the loop with its
// error.
func TestUnreachedThenLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log recorder
		down := errors.New("down")
		attempt, n := script(step{err: down}, step{err: down}, step{connect: true, err: down}, step{err: errRefused})
		err := newLoop(&log).Run(t.Context(), attempt)
		if !errors.Is(err, errRefused) || *n != 4 {
			t.Fatalf("Run = %v after %d attempts, want the refusal after 4", err, *n)
		}
		want := []string{"WARN unreached", "WARN unreached", "WARN lost", "ERROR refusal"}
		if got := log.got(); !slices.Equal(got, want) {
			t.Fatalf("logged %q, want %q", got, want)
		}
	})
}

// TestUntrustedEndsBeforeFirstSuccess: a certificate that fails
// verification ends the loop until the server was reached, and is retried
// after.
func TestUntrustedEndsBeforeFirstSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log recorder
		attempt, _ := script(step{err: errUntrusted})
		if err := newLoop(&log).Run(t.Context(), attempt); !errors.Is(err, untrusted.ErrCertificate) {
			t.Fatalf("Run = %v, want untrusted.ErrCertificate", err)
		}
		if got := log.got(); !slices.Equal(got, []string{"ERROR untrusted"}) {
			t.Fatalf("logged %q", got)
		}

		log = recorder{}
		attempt, n := script(step{connect: true, err: errUntrusted}, step{err: errUntrusted}, step{err: errRefused})
		if err := newLoop(&log).Run(t.Context(), attempt); !errors.Is(err, errRefused) || *n != 3 {
			t.Fatalf("Run = %v after %d attempts, want the refusal after 3", err, *n)
		}
	})
}

// TestBackoff: the waits between failures grow, start over once an
// attempt connects, and stay within the bounds.
func TestBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var starts []time.Time
		down := errors.New("down")
		steps := []step{{err: down}, {err: down}, {err: down}, {connect: true, err: down}, {err: errRefused}}
		i := 0
		attempt := func(ctx context.Context, connected func()) error {
			starts = append(starts, time.Now())
			s := steps[i]
			i++
			if s.connect {
				connected()
			}
			return s.err
		}
		if err := newLoop(&recorder{}).Run(t.Context(), attempt); !errors.Is(err, errRefused) {
			t.Fatalf("Run = %v", err)
		}
		var waits []time.Duration
		for i := 1; i < len(starts); i++ {
			waits = append(waits, starts[i].Sub(starts[i-1]))
		}
		// Equal jitter: each wait is within [d/2, d] of 100, 200, 400 ms,
		// then 100 ms again after the connection.
		for i, d := range []time.Duration{100, 200, 400, 100} {
			d *= time.Millisecond
			if waits[i] < d/2 || waits[i] > d {
				t.Fatalf("wait %d: %v, want within [%v, %v] (waits %v)", i, waits[i], d/2, d, waits)
			}
		}
	})
}

// TestFailedAndStop: Failed is told of every failure and sets the level;
// cancelling ctx during a wait ends the loop with its cause.
func TestFailedAndStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log recorder
		l := newLoop(&log)
		var failures []string
		l.Failed = func(err error) slog.Level {
			failures = append(failures, err.Error())
			return slog.LevelDebug
		}
		stop := errors.New("stopping")
		ctx, cancel := context.WithCancelCause(t.Context())
		attempt := func(context.Context, func()) error {
			if len(failures) == 2 {
				cancel(stop)
			}
			return errors.New("down")
		}
		done := make(chan error)
		go func() { done <- l.Run(ctx, attempt) }()
		if err := <-done; !errors.Is(err, stop) {
			t.Fatalf("Run = %v, want the cause %v", err, stop)
		}
		if len(failures) != 2 || !slices.Equal(log.got(), []string{"DEBUG unreached", "DEBUG unreached"}) {
			t.Fatalf("failures %q, logged %q", failures, log.got())
		}
	})
}
