package forward

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/acceptloop"
	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/tunnel"
)

// TunnelFunc opens a tunnelled connection on behalf of a client at origin
// (the zero value when unknown). client, when not nil, is the accepted
// connection that will be copied to the tunnelled one: what it sends while
// the tunnel is being opened may be read and sent with the request. It is
// the type of connet.Source.DialEarly.
type TunnelFunc = func(ctx context.Context, origin netip.AddrPort, client net.Conn) (net.Conn, error)

// Source is the local side of a source endpoint: a bound listener of the
// URL's scheme and what it needs to serve it.
type Source struct {
	settings config.SourceSettings
	ln       net.Listener
	log      *slog.Logger
	// tlsConf is the server TLS config of tls/https/wss sources.
	tlsConf *tls.Config
}

// NewSource binds the source's listener and loads its TLS material, so that
// a taken port or a bad certificate fails at start.
func NewSource(s config.SourceSettings, log *slog.Logger) (*Source, error) {
	src := &Source{settings: s, log: log}
	switch s.URL.Scheme {
	case "tcp", "http", "ws":
	case "tls", "https", "wss":
		conf, err := serverTLS(s.CertFile, s.KeyFile, s.CAsFile)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.URL, err)
		}
		src.tlsConf = conf
	default:
		return nil, fmt.Errorf("source %s: scheme %q is not supported", s.URL, s.URL.Scheme)
	}
	// http/https/ws/wss URLs may omit the port; listen where a client
	// typing the URL would connect.
	addr := s.URL.Host
	if s.URL.Port() == "" {
		addr = net.JoinHostPort(s.URL.Hostname(), defaultPorts[s.URL.Scheme])
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", s.URL, err)
	}
	src.ln = ln
	return src, nil
}

var defaultPorts = map[string]string{"http": "80", "ws": "80", "https": "443", "wss": "443"}

// Addr is where the source listens.
func (s *Source) Addr() net.Addr { return s.ln.Addr() }

// Close releases the listener of a source that will not be served.
func (s *Source) Close() error { return s.ln.Close() }

// Serve accepts local clients and tunnels each through dial until ctx ends;
// the listener is closed when it returns.
func (s *Source) Serve(ctx context.Context, dial TunnelFunc) error {
	switch s.settings.URL.Scheme {
	case "tls":
		return serveStreams(ctx, s.ln, dial, s.log, s.tlsHandshake)
	case "http", "https":
		proxy, transport := s.newHTTPProxy(dial)
		defer transport.CloseIdleConnections()
		return s.serveHTTP(ctx, proxy)
	case "ws", "wss":
		// Each WebSocket session runs in its handler under sctx, which
		// ends with Serve, and Serve waits for them: a hijacked connection
		// is not the HTTP server's to close.
		sctx, cancel := context.WithCancel(ctx)
		var sessions sessionGroup
		err := s.serveHTTP(sctx, s.newWSHandler(sctx, dial, &sessions))
		cancel()
		sessions.closeAndWait()
		return err
	}
	return serveStreams(ctx, s.ln, dial, s.log, nil)
}

// originOfString is originOf for the address string of an HTTP request.
func originOfString(addr string) netip.AddrPort {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// originOf is the client address to report as a connection's origin, with
// IPv4 clients of a dual-stack listener shown as IPv4.
func originOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// serveStreams accepts connections on ln and tunnels each through dial
// until ctx ends; ln is closed when it returns. A connection whose tunnel
// cannot be opened is reset at once and the reason logged. When it
// returns, the connections it tunnels are reset at both ends (a client
// stopping mid-transfer cuts them, and a cut must not pass for a clean
// end) and their goroutines are gone.
//
// prepare, when not nil, runs first on each connection (the TLS handshake of
// a tls source) and returns the connection to tunnel; if it fails the
// connection is refused and the reason logged, and others are unaffected.
func serveStreams(ctx context.Context, ln net.Listener, dial TunnelFunc, log *slog.Logger, prepare prepareFunc) error {
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	defer func() { _ = ln.Close() }()
	var forwards sync.WaitGroup
	var splices tunnel.Splices
	defer forwards.Wait()
	defer splices.Stop()
	log.Info("source listening", "addr", logs.Addr(ln.Addr()))
	acceptloop.Run(ln, ctx.Done(), func(conn net.Conn) { forwards.Go(func() { forward(ctx, conn, dial, log, prepare, &splices) }) },
		func(err error, wait time.Duration) {
			log.Warn("source accept failed, retrying", "addr", logs.Addr(ln.Addr()), "retry_in_ms", logs.Millis(wait), logs.Err(err))
		})
	return nil
}

// prepareFunc readies an accepted connection before it is tunnelled.
type prepareFunc = func(ctx context.Context, conn net.Conn) (net.Conn, error)

func forward(ctx context.Context, conn net.Conn, dial TunnelFunc, log *slog.Logger, prepare prepareFunc, splices *tunnel.Splices) {
	origin := originOf(conn.RemoteAddr())
	if prepare != nil {
		ready, err := prepare(ctx, conn)
		if err != nil {
			log.Warn("source connection refused", "client", logs.Addr(conn.RemoteAddr()), logs.Err(err))
			_ = conn.Close()
			return
		}
		conn = ready
	}
	remote, err := dial(ctx, origin, conn)
	if err != nil {
		log.Warn("source connection closed: no tunnel", "client", logs.Addr(conn.RemoteAddr()), dialReason(err), logs.Err(err))
		// A reset, not a clean end: the client may have sent a request
		// already (dial takes what it sends early), and an empty answer
		// ended cleanly could pass for a complete one.
		tunnel.Abort(conn)
		return
	}
	// On a fresh goroutine: this one's stack grew while dialing, and the
	// splice keeps its goroutine for the connection's life, mostly idle
	// (issue 10: an idle connection's cost per client).
	splices.Go(tunnel.TCP(conn), tunnel.TCP(remote))
}
