package connet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/endpoints"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
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
	client *Client
	ep     *endpoints.Endpoint
	cfg    DestinationConfig
	// failures keeps a service that fails every connection from logging
	// a line per connection.
	failures logs.Repeats
}

// Destination adds a destination to the client and announces it to the
// control server.
func (c *Client) Destination(ctx context.Context, cfg DestinationConfig) (*Destination, error) {
	if cfg.Name == "" {
		return nil, fmt.Errorf("destination needs a name")
	}
	if len(cfg.Name) > wire.MaxNameLen {
		return nil, fmt.Errorf("destination name of %d bytes (at most %d)", len(cfg.Name), wire.MaxNameLen)
	}
	if cfg.Route == "" {
		cfg.Route = RouteAny
	}
	if _, err := ParseRoute(string(cfg.Route)); err != nil {
		return nil, fmt.Errorf("destination %q: %w", cfg.Name, err)
	}
	if len(cfg.RelayEncryptions) == 0 {
		cfg.RelayEncryptions = c.cfg.relayEncryptions
	}
	if err := checkEncryptions(cfg.RelayEncryptions); err != nil {
		return nil, fmt.Errorf("destination %q: %w", cfg.Name, err)
	}
	if cfg.DialTimeout < 0 {
		return nil, fmt.Errorf("destination %q: negative DialTimeout", cfg.Name)
	}
	ep, err := c.addEndpoint(peer.EndpointKey{Name: cfg.Name, Role: peer.Destination}, cfg.Route, cfg.RelayEncryptions)
	if err != nil {
		return nil, err
	}
	c.cfg.logger.Info("destination added", "name", cfg.Name, "route", cfg.Route)
	return &Destination{client: c, ep: ep, cfg: cfg}, nil
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
	var forwards sync.WaitGroup
	var splices tunnel.Splices
	defer forwards.Wait()
	defer splices.Stop()
	for {
		in, err := d.ep.Next(ctx)
		if err != nil {
			return err
		}
		forwards.Go(func() { d.forward(ctx, in, dial, &splices) })
	}
}

func (d *Destination) forward(ctx context.Context, in *endpoints.Incoming, dial DialFunc, splices *tunnel.Splices) {
	if d.cfg.DialTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.cfg.DialTimeout)
		defer cancel()
	}
	conn, err := dial(ctx, in.Origin)
	if err != nil {
		d.serviceFailed("destination dial failed", err, "peer", in.Peer.ID)
		in.Refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_DESTINATION_DIAL_FAILED, "%v", err))
		return
	}
	d.ep.RecordError(nil, "")
	tc, err := d.ep.Take(in)
	if err != nil {
		_ = conn.Close()
		return
	}
	// On a fresh goroutine: this one's stack grew while dialing, and the
	// splice keeps its goroutine for the connection's life, mostly idle
	// (issue 10: an idle connection's cost per client).
	splices.Go(tunnel.TCP(conn), tc)
}

// ReportServiceError records that the service failed a connection that
// Serve's dial had opened: a TLS service that refuses the client after
// the handshake, say, which the dial could not see. The error becomes the
// destination's last error on the status page, and is logged as a dial
// failure is, once per distinct cause.
func (d *Destination) ReportServiceError(err error) {
	d.serviceFailed("destination's service refused the connection", err)
}

// serviceFailed records err, a failure of the destination's service, as
// the last error and logs it at warn with attrs, once per distinct cause
// and quiet period (a service that refuses every connection makes one
// line, not one per connection; the line says how many were held back).
func (d *Destination) serviceFailed(msg string, err error, attrs ...any) {
	d.ep.RecordError(err, ReasonOf(err))
	ok, skipped := d.failures.Allow(err.Error(), time.Now())
	if !ok {
		return
	}
	attrs = append([]any{"name", d.cfg.Name}, attrs...)
	if skipped > 0 {
		attrs = append(attrs, "repeats_not_logged", skipped)
	}
	d.client.cfg.logger.Warn(msg, append(attrs, logs.Err(err))...)
}
