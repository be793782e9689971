package connet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pconnet/connet/internal/controlclient"
	"github.com/p2pconnet/connet/internal/direct"
	"github.com/p2pconnet/connet/internal/endpoints"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/notify"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/portmap"
	"github.com/p2pconnet/connet/internal/relayclient"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"
)

// Timing of the client's peer bookkeeping.
const (
	// peerLinger keeps the live paths of a peer the control server stopped
	// naming: usually the peer only lost its control connection (or the
	// server restarted) and is back within seconds.
	peerLinger = time.Minute
	// knownPeerWait is how long an incoming handshake from a peer not yet
	// announced may wait for the announcement, which races with the
	// peer's first packets.
	knownPeerWait = 2 * time.Second
)

// Client is a connet client: one identity, one UDP socket, one control
// session, and any number of destinations and sources.
type Client struct {
	cfg      *clientConfig
	id       *identity.Identity
	udp      net.PacketConn
	tr       *quic.Transport
	registry *peer.Registry
	node     *direct.Node
	session  *controlclient.Session
	relays   *relayclient.Manager
	// portmap keeps the client's port mapped on its NAT gateway; nil when
	// port mapping is off.
	portmap *portmap.Mapper
	started time.Time
	status  net.Listener
	// metrics are served at the status address's /metrics, from
	// metricsReg.
	metrics    *metrics.Client
	metricsReg *prometheus.Registry

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	announce notify.Value[controlclient.Announcement]
	// nat is how this client's NAT maps (a peer.NAT), as the control
	// server last said.
	nat atomic.Value

	// endpoints is the table of the client's destinations and sources.
	endpoints *endpoints.Table
}

// Connect starts a client and blocks until it is authenticated by the
// control server. It keeps retrying an unreachable server until ctx ends;
// a refused token or address fails at once with an error wrapping
// ErrRefused, and a server certificate that fails verification (unknown
// authority, wrong name, expired) with one wrapping ErrUntrustedServer. After Connect returns, the client reconnects by itself until
// Close.
func Connect(ctx context.Context, opts ...ClientOption) (*Client, error) {
	c, err := Start(ctx, opts...)
	if err != nil {
		return nil, err
	}
	st, err := waitConnected(ctx, c)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	c.cfg.logger.Info("client ready", "id", c.id.ID, "direct", logs.Addr(c.udp.LocalAddr()), "observed", st.Observed)
	return c, nil
}

// Start starts a client without waiting for the control server, which it
// connects to (and reconnects to) in the background until Close, as
// Connect's client does afterwards. Destinations and sources can be added
// at once: they are announced when the server is reached, and until then a
// source's Dial fails at once with ErrNoPeer rather than leaving its
// callers waiting. A refused token or address ends the client (see Done
// and Err).
func Start(ctx context.Context, opts ...ClientOption) (*Client, error) {
	cfg, err := newClientConfig(opts)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func waitConnected(ctx context.Context, c *Client) (controlclient.Status, error) {
	for {
		st, changed := c.session.Status()
		if st.Connected {
			return st, nil
		}
		select {
		case <-changed:
		case <-c.ctx.Done():
			return st, context.Cause(c.ctx)
		case <-ctx.Done():
			return st, fmt.Errorf("connecting to %s: %w (last error: %s)", c.cfg.controlAddr, context.Cause(ctx), st.LastError)
		}
	}
}

// controlTCP is the session's fallback, nil when turned off.
func (c *Client) controlTCP() muxconn.Dialer {
	if c.cfg.tcpFallback == "" || len(c.cfg.fallbacks) == 0 {
		return nil
	}
	return c.fallback(c.cfg.tcpFallback)
}

// relayTCP dials relays over the fallback transports at the hostports
// they advertise, nil when the fallback is turned off.
func (c *Client) relayTCP() func(string) muxconn.Dialer {
	if c.cfg.tcpFallback == "" || len(c.cfg.fallbacks) == 0 {
		return nil
	}
	return func(hostport string) muxconn.Dialer { return c.fallback(hostport) }
}

// fallback dials addr over the fallback transports in order, each bounded
// by the handshake timeout. Where HTTPS_PROXY names a proxy for addr, the
// WebSocket (which goes through it) comes first: plain TCP would likely
// wait for the timeout.
func (c *Client) fallback(addr string) *muxconn.Fallback {
	f := &muxconn.Fallback{}
	for _, t := range c.cfg.fallbacks {
		switch t {
		case TransportTCP:
			f.Dialers = append(f.Dialers, muxconn.TCPDialer{Addr: addr, Timeout: c.cfg.handshakeTimeout, Network: c.cfg.network})
		case TransportWSS:
			wss := muxconn.WSSDialer{Addr: addr, Timeout: c.cfg.handshakeTimeout, Network: c.cfg.network}
			if muxconn.Proxied(addr) {
				f.Dialers = append([]muxconn.Dialer{wss}, f.Dialers...)
				continue
			}
			f.Dialers = append(f.Dialers, wss)
		}
	}
	return f
}

// Close disconnects the client and ends its destinations and sources.
func (c *Client) Close() error {
	c.cancel(ErrClosed)
	c.endpoints.Close()
	// Each Close below waits for the goroutines its component started;
	// the order matters. The registry first: its peers' maintainers are
	// the node's dialers, and ending the peers ends their paths. Then the
	// relays, then the socket, then the client's own goroutines and those
	// serving peers' streams, and last the node's, which only Accept and
	// the maintainers start.
	c.registry.Close()
	c.relays.Close()
	_ = c.tr.Close()
	err := c.udp.Close()
	c.wg.Wait()
	c.endpoints.Wait()
	c.node.Wait()
	return err
}

// Done is closed when the client stops: after Close, or when the control
// server refused it.
func (c *Client) Done() <-chan struct{} { return c.ctx.Done() }

// Err tells why the client stopped, once Done is closed.
func (c *Client) Err() error { return context.Cause(c.ctx) }

// DirectAddr is the local address of the client's UDP socket.
func (c *Client) DirectAddr() net.Addr { return c.udp.LocalAddr() }

// StatusAddr is the address the status page and metrics are served at,
// nil without ClientStatusAddress.
func (c *Client) StatusAddr() net.Addr { return statusAddr(c.status) }

// checkEndpoint checks the name, route and relay encryptions of a
// destination's or source's config, and returns the route and encryptions
// with the client's defaults filled in.
func (c *Client) checkEndpoint(role peer.Role, name string, route Route, encs []RelayEncryption) (Route, []RelayEncryption, error) {
	if name == "" {
		return "", nil, fmt.Errorf("%s needs a name", role)
	}
	if len(name) > wire.MaxNameLen {
		return "", nil, fmt.Errorf("%s name of %d bytes (at most %d)", role, len(name), wire.MaxNameLen)
	}
	if route == "" {
		route = RouteAny
	}
	if _, err := ParseRoute(string(route)); err != nil {
		return "", nil, fmt.Errorf("%s %q: %w", role, name, err)
	}
	if len(encs) == 0 {
		encs = c.cfg.relayEncryptions
	}
	if err := checkEncryptions(encs); err != nil {
		return "", nil, fmt.Errorf("%s %q: %w", role, name, err)
	}
	return route, encs, nil
}

// addEndpoint registers a destination or source with the table.
func (c *Client) addEndpoint(key peer.EndpointKey, opts endpoints.Options) (*endpoints.Endpoint, error) {
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	ep, err := c.endpoints.Add(key, opts)
	if errors.Is(err, ErrEndpointExists) {
		return nil, fmt.Errorf("%w: %s %q", err, key.Role, key.Name)
	}
	return ep, err
}
