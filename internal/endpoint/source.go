package endpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/tunnel"
)

// DialFunc opens a tunnelled connection on behalf of a client at origin
// (the zero value when unknown). It is the type of connet.Source.DialFrom.
type DialFunc = func(ctx context.Context, origin netip.AddrPort) (net.Conn, error)

// Source is the local side of a source endpoint: a bound listener of the
// URL's scheme and what it needs to serve it.
type Source struct {
	settings config.SourceSettings
	ln       net.Listener
	log      *slog.Logger
}

// NewSource binds the source's listener and loads its TLS material, so that
// a taken port or a bad certificate fails at start.
func NewSource(s config.SourceSettings, log *slog.Logger) (*Source, error) {
	switch s.URL.Scheme {
	case "tcp":
		ln, err := net.Listen("tcp", s.URL.Host)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.URL, err)
		}
		return &Source{settings: s, ln: ln, log: log}, nil
	}
	return nil, fmt.Errorf("source %s: scheme %q is not supported yet", s.URL, s.URL.Scheme)
}

// Addr is where the source listens.
func (s *Source) Addr() net.Addr { return s.ln.Addr() }

// Close releases the listener of a source that will not be served.
func (s *Source) Close() error { return s.ln.Close() }

// Serve accepts local clients and tunnels each through dial until ctx ends;
// the listener is closed when it returns.
func (s *Source) Serve(ctx context.Context, dial DialFunc) error {
	return serveStreams(ctx, s.ln, dial, s.log)
}

// Accept-retry bounds for temporary errors such as running out of file
// descriptors: back off instead of spinning, recover once it passes.
const (
	acceptRetryMin = 5 * time.Millisecond
	acceptRetryMax = time.Second
)

// serveStreams accepts connections on ln and tunnels each through dial
// until ctx ends; ln is closed when it returns. A connection whose tunnel
// cannot be opened is closed at once and the reason logged.
func serveStreams(ctx context.Context, ln net.Listener, dial DialFunc, log *slog.Logger) error {
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
