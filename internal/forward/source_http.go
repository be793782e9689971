package forward

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"

	"github.com/p2pconnet/connet/internal/logs"
)

// HTTP server bounds of http/https/ws/wss sources. Only the request header
// is bounded in time: bodies and upgraded connections may stream for as
// long as they need.
const (
	// maxIdleTunnels is how many idle keep-alive connections through the
	// tunnel the reverse proxy keeps for reuse.
	maxIdleTunnels = 32
)

// tunnelHost is the host of the proxy's upstream URL. The transport dials
// through the tunnel whatever the address, so it only keys the connection
// pool; one constant host lets every request reuse the same connections.
const tunnelHost = "connet-destination"

// newHTTPProxy is the reverse proxy of an http/https source: each upstream
// connection is a tunnelled connection, pooled and kept alive across
// requests like any HTTP client's.
// The caller closes the transport's idle connections when done.
func (s *Source) newHTTPProxy(dial TunnelFunc) (*httputil.ReverseProxy, *http.Transport) {
	// The origin of a pooled connection is not one client's, so the
	// client address travels in X-Forwarded-For instead.
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dial(ctx, netip.AddrPort{}, nil)
		},
		MaxIdleConns:        maxIdleTunnels,
		MaxIdleConnsPerHost: maxIdleTunnels,
		IdleConnTimeout:     httpIdleTimeout,
		// The service speaks HTTP/1.1 (or upgrades from it) in the clear
		// at the far end of the tunnel.
		ForceAttemptHTTP2: false,
	}
	// The path rewrite of the spec: a request for /x reaches the service
	// as /path/x when the URL is http://:port/path.
	target := &url.URL{Scheme: "http", Host: tunnelHost, Path: s.settings.URL.Path}
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		Transport:  transport,
		BufferPool: newBufferPool(),
		// No FlushInterval: the proxy flushes at once by itself when a
		// response streams (no Content-Length, or server-sent events),
		// and a flush per write would cost a packet per small write.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Warn("source request failed", "client", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, dialReason(err), logs.Err(err))
			answerDialError(w, err)
		},
	}, transport
}

// serveHTTP serves h on the source's listener (over TLS for https/wss)
// until ctx ends, to the host names the source answers to.
func (s *Source) serveHTTP(ctx context.Context, h http.Handler) error {
	srv := newHTTPServer(s.checkHost(h), s.log)
	srv.TLSConfig = s.tlsConf
	if s.settings.URL.Scheme == "wss" {
		// WebSocket upgrades need HTTP/1.1: an empty, non-nil map turns
		// off HTTP/2 negotiation.
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	s.log.Info("source listening", "addr", logs.Addr(s.ln.Addr()), "url", s.settings.URL.String())
	serve := func() error { return srv.Serve(s.ln) }
	if s.tlsConf != nil {
		serve = func() error { return srv.ServeTLS(s.ln, "", "") }
	}
	if err := runHTTP(ctx, srv, serve); err != nil {
		return fmt.Errorf("source %s: %w", s.settings.URL, err)
	}
	return nil
}
