package endpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"time"

	"github.com/p2pconnet/connet/internal/tunnel"
)

// DialFunc opens a tunnel on behalf of a client at origin.
type DialFunc func(ctx context.Context, origin netip.AddrPort) (net.Conn, error)

// Listen opens the listener a source URL asks for.
func Listen(u *url.URL) (net.Listener, error) {
	switch u.Scheme {
	case "tcp":
		ln, err := net.Listen("tcp", u.Host)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", u, err)
		}
		return ln, nil
	}
	return nil, fmt.Errorf("source %s: scheme %q is not supported yet", u, u.Scheme)
}

// Accept-retry bounds for temporary errors such as running out of file
// descriptors: back off instead of spinning, recover once it passes.
const (
	acceptRetryMin = 5 * time.Millisecond
	acceptRetryMax = time.Second
)

// ServeSource accepts connections on ln and tunnels each through dial until
// ctx ends; ln is closed when it returns. A connection whose tunnel cannot
// be opened is closed at once and the reason logged.
func ServeSource(ctx context.Context, ln net.Listener, dial DialFunc, log *slog.Logger) error {
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	defer func() { _ = ln.Close() }()
	log.Info("source listening", "addr", ln.Addr())
	delay := time.Duration(0)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			delay = min(max(2*delay, acceptRetryMin), acceptRetryMax)
			log.Warn("source accept failed, retrying", "addr", ln.Addr(), "in", delay, "err", err)
			select {
			case <-time.After(delay):
				continue
			case <-ctx.Done():
				return nil
			}
		}
		delay = 0
		go forward(ctx, conn, dial, log)
	}
}

func forward(ctx context.Context, conn net.Conn, dial DialFunc, log *slog.Logger) {
	var origin netip.AddrPort
	if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		origin = ta.AddrPort()
	}
	remote, err := dial(ctx, origin)
	if err != nil {
		log.Warn("source connection closed: no tunnel", "client", conn.RemoteAddr(), "err", err)
		_ = conn.Close()
		return
	}
	tunnel.Splice(tunnel.TCP(conn), tunnel.TCP(remote))
}
