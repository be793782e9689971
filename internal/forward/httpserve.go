package forward

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// HTTP server limits of sources and in-process destinations. Only the
// request header is bounded: bodies and responses may stream for as long as
// they like (downloads, server-sent events), and upgraded connections are
// hijacked out of the server's timeouts altogether.
const (
	httpReadHeaderTimeout = 30 * time.Second
	httpIdleTimeout       = 2 * time.Minute
	// httpShutdownGrace is how long requests in flight may finish once the
	// endpoint stops, before their connections are cut.
	httpShutdownGrace = 5 * time.Second
)

// newHTTPServer is the HTTP server of a source or an in-process
// destination, logging its connection errors (a failed TLS handshake, a
// malformed request) to log.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		IdleTimeout:       httpIdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// runHTTP runs serve (srv.Serve or srv.ServeTLS on its listener) until ctx
// ends or serve fails. Then requests in flight get httpShutdownGrace to
// finish, and the rest are ended, upgraded ones included: requests run
// under a context that is cancelled then (the reverse proxy closes an
// upgraded connection when its request context ends). It returns nil when
// ctx ended.
func runHTTP(ctx context.Context, srv *http.Server, serve func() error) error {
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv.BaseContext = func(net.Listener) context.Context { return base }
	served := make(chan error, 1)
	go func() { served <- serve() }()

	var err error
	stopped := false
	select {
	case err = <-served:
		stopped = true
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), httpShutdownGrace)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	cancelBase()
	_ = srv.Close()
	if !stopped {
		err = <-served
	}
	if errors.Is(err, http.ErrServerClosed) || ctx.Err() != nil {
		return nil
	}
	return err
}

// serveHTTP serves h on the connections t accepts until ctx ends or the
// tunnel closes.
func serveHTTP(ctx context.Context, t Tunnel, h http.Handler, log *slog.Logger) error {
	lnCtx, closeLn := context.WithCancel(ctx)
	defer closeLn()
	srv := newHTTPServer(h, log)
	ln := &tunnelListener{ctx: lnCtx, close: closeLn, t: t}
	return runHTTP(ctx, srv, func() error { return srv.Serve(ln) })
}

// tunnelListener presents a Tunnel's accepted connections as a
// net.Listener, for http.Server.
type tunnelListener struct {
	ctx   context.Context
	close context.CancelFunc
	t     Tunnel
}

func (l *tunnelListener) Accept() (net.Conn, error) {
	conn, err := l.t.AcceptContext(l.ctx)
	if err != nil {
		if l.ctx.Err() != nil {
			return nil, net.ErrClosed
		}
		return nil, err
	}
	return conn, nil
}

func (l *tunnelListener) Close() error {
	l.close()
	return nil
}

// Addr is a placeholder: the server is reached through the tunnel, not at
// an address of its own.
func (l *tunnelListener) Addr() net.Addr { return tunnelAddr{} }

type tunnelAddr struct{}

func (tunnelAddr) Network() string { return "connet" }
func (tunnelAddr) String() string  { return "connet-tunnel" }
