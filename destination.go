package connet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// acceptWait is how long a connection from a source waits for the
// destination to take it before the source is told it is busy.
const acceptWait = 10 * time.Second

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
	endpoint
	cfg   DestinationConfig
	queue chan *incoming
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
	d := &Destination{
		endpoint: newEndpoint(c, peer.EndpointKey{Name: cfg.Name, Role: peer.Destination}),
		cfg:      cfg,
		queue:    make(chan *incoming),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if c.destinations[cfg.Name] != nil {
		return nil, fmt.Errorf("%w: destination %q", ErrEndpointExists, cfg.Name)
	}
	c.destinations[cfg.Name] = d
	c.updateAnnounceLocked()
	c.cfg.logger.Info("destination added", "name", cfg.Name, "route", cfg.Route)
	return d, nil
}

// Config returns the destination's config.
func (d *Destination) Config() DestinationConfig { return d.cfg }

// Close removes the destination; connections already accepted go on
// (those that Serve forwards end with it).
func (d *Destination) Close() error {
	d.close(func() {
		if d.client.destinations[d.cfg.Name] == d {
			delete(d.client.destinations, d.cfg.Name)
		}
	})
	return nil
}

// deliver hands a stream to Accept or Serve, or refuses it.
func (d *Destination) deliver(in *incoming) {
	timer := time.NewTimer(acceptWait)
	defer timer.Stop()
	select {
	case d.queue <- in:
	case <-d.closed:
		in.Refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_DESTINATION_NOT_FOUND, "destination %q closed", d.cfg.Name))
	case <-timer.C:
		in.Refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_LIMIT, "destination %q is not accepting connections", d.cfg.Name))
	}
}

func (d *Destination) next(ctx context.Context) (*incoming, error) {
	select {
	case in := <-d.queue:
		return in, nil
	case <-d.closed:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// conn presents an accepted stream as a net.Conn whose RemoteAddr is the
// client that connected to the source when the source knows it (so a
// service sees its real client, as in X-Forwarded-For), else the peer's end
// of the path.
func (d *Destination) conn(in *incoming) *tunnel.Conn {
	var remote net.Addr = in.path.RemoteAddr()
	if in.Origin.IsValid() {
		remote = net.TCPAddrFromAddrPort(in.Origin)
	}
	return &tunnel.Conn{Stream: in.Stream, Local: d.client.udp.LocalAddr(), Remote: remote}
}

// Accept waits for the next connection from a source.
func (d *Destination) Accept() (net.Conn, error) { return d.AcceptContext(context.Background()) }

// AcceptContext waits for the next connection from a source, or for ctx to
// end.
func (d *Destination) AcceptContext(ctx context.Context) (net.Conn, error) {
	for {
		in, err := d.next(ctx)
		if err != nil {
			return nil, err
		}
		if err := in.Accept(); err != nil {
			in.Stream.Reset()
			continue
		}
		return d.track(d.conn(in), in.peer.ID, in.path, d.cfg.RelayEncryptions), nil
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
		in, err := d.next(ctx)
		if err != nil {
			return err
		}
		forwards.Go(func() { d.forward(ctx, in, dial, &splices) })
	}
}

func (d *Destination) forward(ctx context.Context, in *incoming, dial DialFunc, splices *tunnel.Splices) {
	if d.cfg.DialTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.cfg.DialTimeout)
		defer cancel()
	}
	conn, err := dial(ctx, in.Origin)
	if err != nil {
		d.serviceFailed("destination dial failed", err, "peer", in.peer.ID)
		in.Refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_DESTINATION_DIAL_FAILED, "%v", err))
		return
	}
	d.recordError(nil)
	if err := in.Accept(); err != nil {
		_ = conn.Close()
		in.Stream.Reset()
		return
	}
	tc := d.track(d.conn(in), in.peer.ID, in.path, d.cfg.RelayEncryptions)
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
	d.recordError(err)
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
