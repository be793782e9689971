package connet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/p2pconnet/connet/internal/endpoints"
	"github.com/p2pconnet/connet/internal/peer"
)

// DestinationConfig describes a destination: a service this client
// exposes under a name.
type DestinationConfig struct {
	Name  string
	Route Route
	// DialTimeout bounds each dial of Serve; 0 leaves it to the dial
	// function and ctx.
	DialTimeout time.Duration
	// RelayEncryptions are the encryptions accepted over relays; empty
	// means the client's default (ClientRelayEncryptions).
	RelayEncryptions []RelayEncryption
}

// NewDestinationConfig returns the config of a destination named name that
// accepts any route.
func NewDestinationConfig(name string) DestinationConfig {
	return DestinationConfig{Name: name, Route: RouteAny}
}

// WithRoute returns a copy of cfg with the given route.
func (cfg DestinationConfig) WithRoute(r Route) DestinationConfig {
	cfg.Route = r
	return cfg
}

// Destination receives the connections sources open to its name.
type Destination struct {
	ep  *endpoints.Endpoint
	cfg DestinationConfig
}

// Destination adds a destination to the client and announces it to the
// control server.
func (c *Client) Destination(ctx context.Context, cfg DestinationConfig) (*Destination, error) {
	var err error
	if cfg.Route, cfg.RelayEncryptions, err = c.checkEndpoint(peer.Destination, cfg.Name, cfg.Route, cfg.RelayEncryptions); err != nil {
		return nil, err
	}
	if cfg.DialTimeout < 0 {
		return nil, fmt.Errorf("destination %q: negative DialTimeout", cfg.Name)
	}
	ep, err := c.addEndpoint(peer.EndpointKey{Name: cfg.Name, Role: peer.Destination}, endpoints.Options{
		Route: cfg.Route, Encryptions: endpoints.Encryptions(cfg.RelayEncryptions), DialTimeout: cfg.DialTimeout,
	})
	if err != nil {
		return nil, err
	}
	c.cfg.logger.Info("destination added", "name", cfg.Name, "route", cfg.Route)
	return &Destination{ep: ep, cfg: cfg}, nil
}

// Config returns the destination's config.
func (d *Destination) Config() DestinationConfig { return d.cfg }

// Close removes the destination; connections already accepted go on
// (those that Serve forwards end with it).
func (d *Destination) Close() error {
	d.ep.Close()
	return nil
}

// Accept waits for the next connection from a source.
func (d *Destination) Accept() (net.Conn, error) { return d.AcceptContext(context.Background()) }

// AcceptContext waits for the next connection from a source, or for ctx to
// end.
func (d *Destination) AcceptContext(ctx context.Context) (net.Conn, error) {
	for {
		in, err := d.ep.Next(ctx)
		if err != nil {
			return nil, err
		}
		if conn, err := d.ep.Take(in); err == nil {
			return conn, nil
		}
	}
}

// DialFunc connects to the service behind a destination. origin is the
// address of the client that connected to the source, when known.
type DialFunc = func(ctx context.Context, origin netip.AddrPort) (net.Conn, error)

// Serve forwards every connection to the service that dial reaches, until
// ctx ends or the destination closes. A failed dial is reported to the
// source, which closes its client's connection. When Serve returns, the
// connections it forwarded are reset at both ends (cut mid-transfer, they
// must not look complete) and its goroutines are gone.
func (d *Destination) Serve(ctx context.Context, dial DialFunc) error {
	return d.ep.Serve(ctx, dial)
}

// ReportServiceError records that the service failed a connection that
// Serve's dial had opened: a TLS service that refuses the client after
// the handshake, say, which the dial could not see. The error becomes the
// destination's last error on the status page, and is logged as a dial
// failure is, once per distinct cause.
func (d *Destination) ReportServiceError(err error) {
	d.ep.ServiceFailed("destination's service refused the connection", err)
}
