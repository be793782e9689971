package connet

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
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
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/notify"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/portmap"
	"github.com/p2pconnet/connet/internal/relayclient"
	"github.com/p2pconnet/connet/internal/status"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
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

// start builds the client's parts, in the order each needs the ones
// before, and runs them until Close.
func (c *Client) start(ctx context.Context) error {
	if err := c.openSocket(ctx); err != nil {
		return err
	}
	qconf := tuning.QUIC(c.cfg.handshakeTimeout)
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	c.started = time.Now()
	c.metricsReg = metrics.NewRegistry(c.cfg.buildVersion)
	// The status server, the only scraper, starts after the session.
	c.metrics = metrics.NewClient(c.metricsReg, func() bool { st, _ := c.session.Status(); return st.Connected }, func() int { return c.endpoints.PendingStreams() })
	c.buildDirectNode(qconf)
	c.buildEndpointTable()
	c.buildRelays(qconf)
	ln, err := c.listen(qconf)
	if err != nil {
		return err
	}
	c.buildControlSession(qconf)
	c.runParts(ln)
	return nil
}

// openSocket makes the client's identity and its one UDP socket, with the
// QUIC transport on it.
func (c *Client) openSocket(ctx context.Context) error {
	cfg := c.cfg
	var err error
	if c.id, err = identity.Generate("connet-client"); err != nil {
		return err
	}
	if c.udp, err = cfg.packetListener.ListenPacket(ctx, "udp", cfg.directAddr); err != nil {
		return fmt.Errorf("direct address %q: %w", cfg.directAddr, err)
	}
	c.tr = &quic.Transport{Conn: c.udp}
	if cfg.statelessResetKey != nil {
		key := quic.StatelessResetKey(*cfg.statelessResetKey)
		c.tr.StatelessResetKey = &key
	}
	return nil
}

// buildDirectNode builds the node that connects to peers directly, and the
// registry of peers whose maintainers it runs.
func (c *Client) buildDirectNode(qconf *quic.Config) {
	cfg := c.cfg
	// Without a punch secret peers send this client no probes, and it
	// sends none (see package direct).
	var punchSecret []byte
	if cfg.birthdayPunch {
		punchSecret = make([]byte, wire.PunchSecretLen)
		_, _ = rand.Read(punchSecret) // never fails (crypto/rand)
	}
	c.nat.Store(peer.NATUnknown)
	c.announce.Update(func(a controlclient.Announcement) controlclient.Announcement {
		a.PunchSecret = punchSecret
		return a
	})
	c.node = &direct.Node{
		Transport:   c.tr,
		Identity:    c.id,
		Config:      qconf,
		Logger:      cfg.logger,
		AllowDirect: func(st peer.State) bool { return c.endpoints.AllowDirect(st) },
		OnPath:      func(p *peer.Peer, q *netpath.QUIC) { c.endpoints.ServePath(c.ctx, p, q) },
		SetupTime:   func(d time.Duration) { c.metrics.PathSetup("direct", d) },
		NAT:         func() peer.NAT { return c.nat.Load().(peer.NAT) },
		PunchSecret: punchSecret,
		ListenPacket: func(ctx context.Context) (net.PacketConn, error) {
			return cfg.packetListener.ListenPacket(ctx, "udp", probeAddr(cfg.directAddr))
		},
	}
	if !cfg.birthdayPunch {
		cfg.logger.Info("birthday punching through symmetric NATs is off: such peers are reached through relays")
	}
	c.registry = peer.NewRegistry(peerLinger, c.node.Maintain)
	c.node.Registry = c.registry
}

// buildEndpointTable builds the table of the client's destinations and
// sources.
func (c *Client) buildEndpointTable() {
	c.endpoints = endpoints.New(endpoints.Config{
		Logger:     c.cfg.logger,
		Metrics:    c.metrics,
		Registry:   c.registry,
		Identity:   c.id,
		LocalAddr:  c.udp.LocalAddr(),
		Announce:   c.announceEndpoints,
		MaxPending: c.cfg.maxPendingStreams,

		HandshakeTimeout: c.cfg.handshakeTimeout,
		RelaysOffered:    func() bool { return c.relays.Offered() },
		Control: func() (bool, string) {
			st, _ := c.session.Status()
			return st.Connected, st.LastError
		},
	})
}

// buildRelays builds the manager of the client's relay connections.
func (c *Client) buildRelays(qconf *quic.Config) {
	c.relays = relayclient.New(relayclient.Config{
		Transport: c.tr,
		Identity:  c.id,
		QUIC:      qconf,
		Logger:    c.cfg.logger,
		Peers:     c.registry,
		Secure:    c.endpoints,
		Admit:     c.endpoints.Admit,
		OnStream: func(p *peer.Peer, rp *relayclient.Path, s netpath.Stream, endpoint string, answered func()) {
			c.endpoints.ServeStream(p, rp, s, endpoint, answered)
		},
		SetupTime: func(d time.Duration) { c.metrics.PathSetup("relay", d) },
		TCP:       c.relayTCP(),
	})
}

// listen listens for peers on the socket, and opens the status server's
// listener when there is one; on failure it closes what start opened.
func (c *Client) listen(qconf *quic.Config) (*quic.Listener, error) {
	ln, err := c.tr.Listen(c.id.PinnedServerConfig(wire.ALPNPeer, c.registry.Known, knownPeerWait), qconf)
	if err != nil {
		_ = c.udp.Close()
		return nil, fmt.Errorf("listen for peers: %w", err)
	}
	if c.cfg.statusAddr != "" {
		if c.status, err = status.Listen(c.cfg.statusAddr); err != nil {
			_ = ln.Close()
			_ = c.tr.Close()
			_ = c.udp.Close()
			return nil, err
		}
	}
	return ln, nil
}

// buildControlSession builds the session with the control server.
func (c *Client) buildControlSession(qconf *quic.Config) {
	cfg := c.cfg
	controlName := cfg.controlName
	if controlName == "" {
		if host, _, err := net.SplitHostPort(cfg.controlAddr); err == nil {
			controlName = host
		}
	}
	c.session = controlclient.New(controlclient.Config{
		Transport:  c.tr,
		ServerAddr: cfg.controlAddr,
		TLS: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			RootCAs:      cfg.controlCAs,
			ServerName:   controlName,
			Certificates: []tls.Certificate{c.id.Cert},
		},
		QUIC:         qconf,
		Token:        cfg.token,
		Metadata:     cfg.metadata,
		BuildVersion: cfg.buildVersion,
		Logger:       cfg.logger,
		LocalAddrs:   c.localAddrs,
		Connected:    c.connected(),
		TCP:          c.controlTCP(),
		QUICRetry:    cfg.quicRetry,
		ProbeRefusal: cfg.onOSNetwork(),
	}, &c.announce, c.applyServerState)
}

// runParts runs every part of the client until Close: accepting peers on
// ln, the control session, the announcements, punch probes, port mapping,
// relays and the status server.
func (c *Client) runParts(ln *quic.Listener) {
	c.goRun(func(ctx context.Context) error {
		err := c.node.Accept(ctx, ln)
		if direct.IsClosed(err) {
			return nil
		}
		return err
	})
	c.goRun(func(ctx context.Context) error {
		// The session ends on its own only for what retrying cannot fix
		// (a refusal, an untrusted certificate, a hello over the limits).
		// Nothing works without the server: end the client so its owner
		// learns why from Done/Err (or from Connect).
		if err := c.session.Run(ctx); err != nil && ctx.Err() == nil {
			c.cancel(err)
		}
		return nil
	})
	c.goRun(c.announceRelays)
	c.goRun(c.announceObservations)
	c.goRun(c.node.ServeProbes)
	if c.portmap = c.newPortMapper(); c.portmap != nil {
		c.goRun(c.runPortMap)
	}
	c.goRun(c.relays.Run)
	if c.status != nil {
		c.goRun(func(ctx context.Context) error {
			return status.Serve(ctx, c.status, func() any { return c.Status() }, metrics.Handler(c.metricsReg), c.cfg.logger)
		})
	}
}

// connected returns the session's hook for every control connection: it
// counts each after the first as a reconnect, and tells the relays which
// transport reaches the servers (over TCP, relays are dialed over TCP).
func (c *Client) connected() func() {
	var connected atomic.Bool
	return func() {
		if connected.Swap(true) {
			c.metrics.Reconnected()
		}
		st, _ := c.session.Status()
		c.relays.SetTransport(st.Transport)
	}
}

// controlTCP is the session's fallback, nil when turned off.
func (c *Client) controlTCP() controlclient.Dialer {
	if c.cfg.tcpFallback == "" || len(c.cfg.fallbacks) == 0 {
		return nil
	}
	return c.fallback(c.cfg.tcpFallback)
}

// relayTCP dials relays over the fallback transports at the hostports
// they advertise, nil when the fallback is turned off.
func (c *Client) relayTCP() func(string) controlclient.Dialer {
	if c.cfg.tcpFallback == "" || len(c.cfg.fallbacks) == 0 {
		return nil
	}
	return func(hostport string) controlclient.Dialer { return c.fallback(hostport) }
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
			f.Dialers = append(f.Dialers, muxconn.TCPDialer{Addr: addr, Timeout: c.cfg.handshakeTimeout})
		case TransportWSS:
			wss := muxconn.WSSDialer{Addr: addr, Timeout: c.cfg.handshakeTimeout}
			if muxconn.Proxied(addr) {
				f.Dialers = append([]muxconn.Dialer{wss}, f.Dialers...)
				continue
			}
			f.Dialers = append(f.Dialers, wss)
		}
	}
	return f
}

// goRun runs fn until the client closes; an error from fn closes the client.
func (c *Client) goRun(fn func(context.Context) error) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := fn(c.ctx); err != nil && c.ctx.Err() == nil {
			c.cfg.logger.Error("client component failed", logs.Err(err))
			c.cancel(err)
		}
	}()
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

// localAddrs lists the client's own addresses for the control server.
// Loopback addresses are offered only when the server itself is reached
// over loopback, i.e. when peers may be on this host.
func (c *Client) localAddrs(observed netip.AddrPort) []netip.AddrPort {
	addrs, err := direct.LocalAddrs(c.udp.LocalAddr(), observed.Addr().IsLoopback())
	if err != nil {
		c.cfg.logger.Warn("cannot list local addresses", logs.Err(err))
	}
	return addrs
}

// applyServerState takes the control server's latest word.
func (c *Client) applyServerState(st controlclient.State) {
	c.registry.Apply(st.Peers)
	c.relays.Apply(st.Relays, st.Grant)
	if c.nat.Swap(st.NAT) != st.NAT && st.NAT != peer.NATUnknown {
		c.cfg.logger.Info("NAT mapping detected", "mapping", string(st.NAT))
	}
	c.endpoints.Apply(st.Peers, st.Refused)
}

// announceEndpoints tells the control server the client's endpoints.
func (c *Client) announceEndpoints(eps []*pb.Endpoint) {
	c.announce.Update(func(a controlclient.Announcement) controlclient.Announcement {
		a.Endpoints = eps
		return a
	})
}

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

// announceRelays tells the control server which relays the client is at,
// whenever that changes, so peers know where to reach it.
func (c *Client) announceRelays(ctx context.Context) error {
	for {
		ids, changed := c.relays.Connected()
		relays := make([][]byte, len(ids))
		for i, id := range ids {
			relays[i] = id[:]
		}
		c.announce.Update(func(a controlclient.Announcement) controlclient.Announcement {
			a.Relays = relays
			return a
		})
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

// announceObservations passes on to the control server where the relays
// see the client's socket, signed by each relay, whenever that changes:
// the server works out from them how the client's NAT maps, and tells the
// client and its peers (see package observation).
func (c *Client) announceObservations(ctx context.Context) error {
	for {
		observed, changed := c.relays.Observed()
		c.announce.Update(func(a controlclient.Announcement) controlclient.Announcement {
			a.RelayObservations = observed
			return a
		})
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

// probeAddr is where the sockets for punch probes bind: the direct
// address's host, any port.
func probeAddr(directAddr string) string {
	host, _, err := net.SplitHostPort(directAddr)
	if err != nil {
		host = ""
	}
	return net.JoinHostPort(host, "0")
}
