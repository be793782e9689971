// Package redial keeps a connection to a server: it connects, serves the
// connection until it ends, and connects again after a jittered backoff,
// for as long as it is wanted. The client's control session, its relay
// connections and a relay's link to its control server all run this loop,
// each with its own words.
package redial

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/p2pconnet/connet/internal/backoff"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/untrusted"
)

// Attempt makes one connection and serves it until it ends, and returns
// why it ended. It calls connected once the server accepted it: the
// backoff starts over, and a failure after that is a lost connection, not
// an unreached server.
type Attempt func(ctx context.Context, connected func()) error

// Loop says how to retry one server and what to log about it.
type Loop struct {
	// Min and Max bound the wait between attempts (see package backoff).
	Min, Max time.Duration
	// Logger logs each failure: with the server named in its attributes
	// (Logger.With), since the lines below do not name it.
	Logger *slog.Logger
	// Unreached is the warning after an attempt while the server has
	// never accepted a connection; Lost the one after it did.
	Unreached, Lost string
	// Refused, if set, marks the errors that end the loop, logged as
	// RefusedMsg: the server refused us, and retrying will not help.
	Refused    error
	RefusedMsg string
	// TrustAddr, if set, is the server's address: a certificate that fails
	// verification there before the server is first reached ends the loop,
	// logged as UntrustedMsg. It is a mistake in the configuration (the CAs
	// file, the name), which retrying cannot fix. Later it may be a server
	// in the middle of a certificate change, so it is retried.
	TrustAddr    string
	UntrustedMsg string
	// Failed, if set, is told of every failed attempt first (the status
	// pages show the last), and returns the level of its warning.
	// Nil logs every warning at slog.LevelWarn.
	Failed func(err error) slog.Level
}

// Run calls attempt until ctx ends (it returns context.Cause(ctx)) or an
// attempt fails for good (it returns the error).
func (l *Loop) Run(ctx context.Context, attempt Attempt) error {
	bo := backoff.Backoff{Min: l.Min, Max: l.Max}
	reached := false
	connected := func() {
		reached = true
		bo.Reset()
	}
	for {
		err := attempt(ctx, connected)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		level := slog.LevelWarn
		if l.Failed != nil {
			level = l.Failed(err)
		}
		if err := l.final(err, reached); err != nil {
			return err
		}
		msg := l.Unreached
		if reached {
			msg = l.Lost
		}
		delay := bo.Next()
		l.Logger.Log(ctx, level, msg, "retry_in_ms", logs.Millis(delay), logs.Err(err))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		}
	}
}

// final returns the error that ends the loop, logged, if err is one: a
// refusal, or an untrusted certificate before the server was reached.
func (l *Loop) final(err error, reached bool) error {
	if l.Refused != nil && errors.Is(err, l.Refused) {
		l.Logger.Error(l.RefusedMsg, "err", err)
		return err
	}
	if l.TrustAddr == "" || reached {
		return nil
	}
	if cerr := untrusted.Check(l.TrustAddr, err); cerr != nil {
		l.Logger.Error(l.UntrustedMsg, "err", cerr)
		return cerr
	}
	return nil
}
