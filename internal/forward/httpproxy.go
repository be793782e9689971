package forward

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"time"

	"github.com/p2pconnet/connet/internal/config"
)

// newHTTPProxy is the reverse proxy of an http or https destination: a
// request for /x reaches the URL's path joined with /x, with Host set to
// the service's and X-Forwarded-For/-Host/-Proto added as the standard
// library does them (the client is the tunnelled conn's RemoteAddr, i.e. the
// origin client of the source).
func newHTTPProxy(d config.DestinationSettings, log *slog.Logger) (http.Handler, error) {
	target := &url.URL{Scheme: d.URL.Scheme, Host: d.URL.Host, Path: d.URL.Path, RawPath: d.URL.RawPath, RawQuery: d.URL.RawQuery}
	transport := &http.Transport{
		// The service is reached directly; HTTP_PROXY and friends are for
		// the user's outgoing traffic, not for this hop.
		Proxy:                 nil,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	timeout := d.DialTimeout
	if d.URL.Scheme == "https" {
		cfg, err := clientTLS(d.URL.Hostname(), d.CAsFile, d.InsecureSkipVerify, d.CertFile, d.KeyFile)
		if err != nil {
			return nil, err
		}
		// HTTP/1.1 only: Upgrade (WebSocket) needs it, and one TCP
		// connection per request stream is what the tunnel carries anyway.
		cfg.NextProtos = []string{"http/1.1"}
		// Our own TLS dial, so that dial-timeout bounds connect and
		// handshake together, as for tls:// destinations.
		transport.DialTLSContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialService(ctx, addr, timeout, config.ProxyProtoNone, netip.AddrPort{}, cfg)
		}
	}
	transport.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
		return dialService(ctx, addr, timeout, config.ProxyProtoNone, netip.AddrPort{}, nil)
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport:  transport,
		BufferPool: newBufferPool(),
		// No FlushInterval: the proxy flushes at once by itself when a
		// response streams (no Content-Length, or server-sent events),
		// and a flush per write would cost a packet per small write.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
				// The client went away; there is nobody to answer.
				log.Debug("http request abandoned by client", "method", r.Method, "path", r.URL.Path, "client", r.RemoteAddr)
				return
			}
			log.Warn("http destination: service unreachable", "service", target.Redacted(), "method", r.Method, "path", r.URL.Path, "client", r.RemoteAddr, "err", err)
			http.Error(w, "502 bad gateway: connet cannot reach the service behind this destination", http.StatusBadGateway)
		},
	}, nil
}
