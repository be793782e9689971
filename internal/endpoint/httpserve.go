package endpoint

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// HTTP server limits for in-process destinations. Only the request header
// is bounded: bodies and responses may stream for as long as they like
// (downloads, server-sent events), and upgraded connections are hijacked
// out of the server's timeouts altogether.
const (
	httpReadHeaderTimeout = 30 * time.Second
	httpIdleTimeout       = 2 * time.Minute
	// httpShutdownGrace is how long requests in flight may finish once the
	// destination stops, before their connections are cut.
	httpShutdownGrace = 5 * time.Second
)

// serveHTTP serves h on the connections t accepts until ctx ends or the
// tunnel closes, and returns only after the server and every request
// (including upgraded ones) have been stopped.
func serveHTTP(ctx context.Context, t Tunnel, h http.Handler, log *slog.Logger) error {
	// Requests derive from base, not ctx, so that a stop first lets
	// requests finish for a grace period; canceling base then ends the rest,
	// upgraded connections included (the reverse proxy closes them when
	// their request context ends).
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	lnCtx, closeLn := context.WithCancel(ctx)
	defer closeLn()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		IdleTimeout:       httpIdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(&tunnelListener{ctx: lnCtx, close: closeLn, t: t}) }()

	var err error
	stopped := false
	select {
	case err = <-served:
		// The tunnel stopped accepting (the destination closed).
		stopped = true
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), httpShutdownGrace)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	cancelBase()
	_ = srv.Close()
	if !stopped {
		<-served
	}
	return err
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
