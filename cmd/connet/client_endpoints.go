package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/forward"
)

// localEndpoints are the client's endpoints on this machine: the services
// its destinations expose and the listeners its sources forward from.
type localEndpoints struct {
	settings     config.ClientSettings
	destinations map[string]*forward.Destination
	// sources holds the sources that do not serve yet: one that serves
	// closes its listener when it returns.
	sources map[string]*forward.Source
	log     *slog.Logger
}

// openEndpoints binds the sources' listeners and loads every endpoint's
// files before the client starts, so a taken port or a bad certificate
// fails at once.
func openEndpoints(cs config.ClientSettings, log *slog.Logger) (*localEndpoints, error) {
	e := &localEndpoints{
		settings:     cs,
		destinations: map[string]*forward.Destination{},
		sources:      map[string]*forward.Source{},
		log:          log,
	}
	err := openEach(cs.Sources, "source", forward.NewSource, log, e.sources)
	if err == nil {
		err = openEach(cs.Destinations, "destination", forward.NewDestination, log, e.destinations)
	}
	if err != nil {
		e.closeUnserved()
		return nil, err
	}
	return e, nil
}

// openEach opens the endpoint of each of settings into opened; what is
// the kind of endpoint, for logs and errors.
func openEach[S, E any](settings map[string]S, what string, open func(S, *slog.Logger) (E, error), log *slog.Logger, opened map[string]E) error {
	for name, s := range settings {
		ep, err := open(s, log.With(what, name))
		if err != nil {
			return fmt.Errorf("%s %q: %w", what, name, err)
		}
		opened[name] = ep
	}
	return nil
}

// closeUnserved releases the listeners of the sources that never served.
func (e *localEndpoints) closeUnserved() {
	for _, s := range e.sources {
		_ = s.Close()
	}
}

// serve adds every endpoint to cl and serves it, until ctx ends (nil), an
// endpoint fails, or the client stops (with a hint when the server's
// certificate was not trusted).
func (e *localEndpoints) serve(ctx context.Context, cl *connet.Client) error {
	// On the way out, the endpoints stop serving before the client
	// closes: each resets the connections it carries and returns, so a
	// client stopped mid-transfer cuts them at both ends with resets, not
	// with clean ends that would pass a truncated stream off as complete.
	var serving sync.WaitGroup
	defer serving.Wait()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// start serves in the background; the first endpoint to fail stops
	// the others.
	start := func(serve func() error) { serving.Go(func() { cancel(ignoreClosed(serve())) }) }
	if err := e.serveDestinations(ctx, cl, start); err != nil {
		return err
	}
	if err := e.serveSources(ctx, cl, start); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	case <-cl.Done():
		return trustHint(cl.Err(), "server-cas-file", "server-name")
	}
}

// serveDestinations adds each destination to cl and starts serving it.
func (e *localEndpoints) serveDestinations(ctx context.Context, cl *connet.Client, start func(func() error)) error {
	for name, d := range e.settings.Destinations {
		dst, err := cl.Destination(ctx, connet.DestinationConfig{
			Name: name, Route: d.Route, RelayEncryptions: d.RelayEncryptions,
		})
		if err != nil {
			return err
		}
		e.log.Info("destination ready", "name", name, "url", d.URL.Redacted())
		local := e.destinations[name]
		start(func() error { return local.Serve(ctx, dst) })
	}
	return nil
}

// serveSources adds each source to cl and starts serving it.
func (e *localEndpoints) serveSources(ctx context.Context, cl *connet.Client, start func(func() error)) error {
	for name, s := range e.settings.Sources {
		src, err := cl.Source(ctx, connet.SourceConfig{
			Name: name, Route: s.Route, DialTimeout: s.DialTimeout, RelayEncryptions: s.RelayEncryptions,
			LBPolicy: s.LBPolicy, LBRetry: s.LBRetry, LBRetryMax: s.LBRetryMax,
		})
		if err != nil {
			return err
		}
		local := e.sources[name]
		delete(e.sources, name)
		start(func() error { return local.Serve(ctx, src.DialEarly) })
	}
	return nil
}

func ignoreClosed(err error) error {
	if errors.Is(err, connet.ErrClosed) {
		return nil
	}
	return err
}
