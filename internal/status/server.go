// Package status serves a component's state as JSON over HTTP, for people
// and scripts that want to see what a client or server is doing.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/p2pconnet/connet/internal/logs"
)

// Limits of the status server's connections. Its pages are small and
// answered at once, to people, scripts and metric scrapers that ask and
// go; nothing may hold a connection beyond these.
const (
	// readTimeout bounds a request, header and all (a GET has no body).
	readTimeout = 5 * time.Second
	// writeTimeout bounds reading the request and writing the answer: a
	// large server's metrics page is some hundreds of KiB, which even a
	// slow scraper takes well within it (Prometheus gives a scrape 10 s).
	writeTimeout = 30 * time.Second
	// idleTimeout closes a kept-alive connection that asks nothing more;
	// a scraper that comes back later opens a new one, which on a status
	// server costs nothing worth keeping a connection for.
	idleTimeout = 10 * time.Second
	// maxHeaderBytes bounds a request's header: a browser's with cookies
	// fits with room to spare (net/http's default is 1 MiB).
	maxHeaderBytes = 64 << 10
)

// Serve answers GET /metrics with metrics (Prometheus text format) and
// every other GET with the JSON encoding of snapshot(), until ctx ends. ln
// is closed when Serve returns.
func Serve(ctx context.Context, ln net.Listener, snapshot func() any, metrics http.Handler, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(snapshot()); err != nil {
			log.Debug("status: write", "err", err)
		}
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	stop := context.AfterFunc(ctx, func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	})
	defer stop()
	log.Info("status server listening", "addr", logs.Addr(ln.Addr()))
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("status server: %w", err)
	}
	return nil
}

// Listen opens the status listener, so a bad address is reported at start-up
// rather than from a goroutine.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("status server: %w", err)
	}
	return ln, nil
}
