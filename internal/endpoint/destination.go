package endpoint

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/p2pconnet/connet/internal/config"
)

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
}

// Destination is the service side of a destination endpoint.
type Destination struct {
	settings config.DestinationSettings
	log      *slog.Logger
	dial     DialFunc
}

// NewDestination loads what the destination's URL needs (TLS material, the
// file root), so that mistakes fail at start.
func NewDestination(d config.DestinationSettings, log *slog.Logger) (*Destination, error) {
	switch d.URL.Scheme {
	case "tcp":
		dialer := &net.Dialer{Timeout: d.DialTimeout}
		addr := d.URL.Host
		dial := func(ctx context.Context, _ netip.AddrPort) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", addr)
		}
		return &Destination{settings: d, log: log, dial: dial}, nil
	}
	return nil, fmt.Errorf("destination %s: scheme %q is not supported yet", d.URL, d.URL.Scheme)
}

// Serve forwards the tunnel's connections to the service until ctx ends or
// the tunnel closes.
func (d *Destination) Serve(ctx context.Context, t Tunnel) error {
	return t.Serve(ctx, d.dial)
}
