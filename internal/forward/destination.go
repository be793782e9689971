package forward

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/p2pconnet/connet/internal/config"
)

// DialFunc opens a connection on behalf of a client at origin (the zero
// value when unknown): a destination's dial of its service.
type DialFunc = func(ctx context.Context, origin netip.AddrPort) (net.Conn, error)

// Tunnel is the tunnel side of a destination, as connet.Destination
// provides it.
type Tunnel interface {
	// Serve dials the service for each connection a source opens, before
	// accepting it, so a failed dial is reported to the source (which may
	// then try another destination).
	Serve(ctx context.Context, dial DialFunc) error
	// AcceptContext accepts the next connection at once, for services
	// served in process (http reverse proxies, files). The connection's
	// RemoteAddr is the origin client when the source knows it.
	AcceptContext(ctx context.Context) (net.Conn, error)
	// ReportServiceError reports that the service failed a connection
	// that a dial of Serve had opened (a TLS service refusing the client
	// after the handshake), for the log and the status page.
	ReportServiceError(err error)
}

// Destination is the service side of a destination endpoint. Exactly one
// of dial (tcp, tls: each tunnelled connection is spliced to a connection
// to the service) and handler (http, https, file: served in process) is set.
type Destination struct {
	settings config.DestinationSettings
	log      *slog.Logger
	dial     DialFunc
	handler  http.Handler
	// root is the directory a file destination serves, opened at start and
	// closed when Serve returns.
	root *os.Root
}

// NewDestination loads what the destination's URL needs (TLS material, the
// file root), so that mistakes fail at start.
func NewDestination(d config.DestinationSettings, log *slog.Logger) (*Destination, error) {
	dst := &Destination{settings: d, log: log}
	if d.ProxyProtoVersion != config.ProxyProtoNone && d.URL.Scheme != "tcp" && d.URL.Scheme != "tls" {
		// Config validation refuses this already; this guards other callers.
		return nil, fmt.Errorf("destination %s: proxy-proto-version applies only to tcp and tls destinations", d.URL)
	}
	switch d.URL.Scheme {
	case "tcp":
		dst.dial = serviceDialer(d, nil)
	case "tls":
		cfg, err := clientTLS(tlsServerName(d.URL.Hostname()), d.CAsFile, d.InsecureSkipVerify, d.CertFile, d.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("destination %s: %w", d.URL, err)
		}
		dst.dial = serviceDialer(d, cfg)
	case "http", "https":
		h, err := newHTTPProxy(d, log)
		if err != nil {
			return nil, fmt.Errorf("destination %s: %w", d.URL, err)
		}
		dst.handler = h
	case "file":
		root, h, err := newFileServer(d.FilePath(), d.ServeDotfiles)
		if err != nil {
			return nil, fmt.Errorf("destination %s: %w", d.URL, err)
		}
		dst.root, dst.handler = root, h
	default:
		return nil, fmt.Errorf("destination %s: scheme %q is not supported", d.URL, d.URL.Scheme)
	}
	return dst, nil
}

// Serve forwards the tunnel's connections to the service until ctx ends or
// the tunnel closes. A Destination is served once: a file destination's
// root is closed when Serve returns.
func (d *Destination) Serve(ctx context.Context, t Tunnel) error {
	if d.root != nil {
		defer func() { _ = d.root.Close() }()
	}
	if d.handler != nil {
		return serveHTTP(ctx, t, d.handler, d.log)
	}
	dial := d.dial
	if d.settings.URL.Scheme == "tls" {
		dial = watchRefusals(dial, d.settings, t.ReportServiceError)
	}
	return t.Serve(ctx, dial)
}

// watchRefusals wraps the connections dial makes to a TLS service so that
// the alert a service ends one with is reported.
func watchRefusals(dial DialFunc, d config.DestinationSettings, report func(error)) DialFunc {
	return func(ctx context.Context, origin netip.AddrPort) (net.Conn, error) {
		conn, err := dial(ctx, origin)
		if err != nil {
			return nil, err
		}
		tc, ok := conn.(*tls.Conn)
		if !ok {
			return conn, nil
		}
		return &refusalWatcher{Conn: tc, addr: d.URL.Host, haveCert: d.CertFile != "", report: report}, nil
	}
}

// tlsServerName is the name to verify for a service at host: an empty host
// dials this machine, so it is verified as localhost.
func tlsServerName(host string) string {
	if host == "" {
		return "localhost"
	}
	return host
}

// serviceDialer dials the service of a tcp destination, or of a tls one when
// tlsCfg is set.
func serviceDialer(d config.DestinationSettings, tlsCfg *tls.Config) DialFunc {
	addr, version, timeout := d.URL.Host, d.ProxyProtoVersion, d.DialTimeout
	return func(ctx context.Context, origin netip.AddrPort) (net.Conn, error) {
		return dialService(ctx, addr, timeout, version, origin, tlsCfg)
	}
}

// dialService connects to addr, sends a PROXY header for origin when version
// is set, and runs a TLS handshake when tlsCfg is set. timeout (0: none)
// bounds the whole of it, so a service that accepts but never answers the
// handshake is given up in time for the source to try another peer.
func dialService(ctx context.Context, addr string, timeout time.Duration, version config.ProxyProtoVersion, origin netip.AddrPort, tlsCfg *tls.Config) (net.Conn, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if version != config.ProxyProtoNone {
		if err := writeProxyHeader(ctx, conn, version, origin); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
	}
	if tlsCfg == nil {
		return conn, nil
	}
	tc := tls.Client(conn, tlsCfg)
	var asked atomic.Bool
	if err := tc.HandshakeContext(withCertRequestFlag(ctx, &asked)); err != nil {
		_ = conn.Close()
		return nil, serviceTLSError(addr, err, len(tlsCfg.Certificates) > 0, asked.Load())
	}
	return tc, nil
}
