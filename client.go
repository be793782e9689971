package connet

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pconnet/connet/internal/controlclient"
	"github.com/p2pconnet/connet/internal/direct"
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

	mu           sync.Mutex
	destinations map[string]*Destination
	sources      map[string]*Source
	refused      map[endpointKey]error
	mismatches   map[mismatchKey]bool
}

type endpointKey struct {
	name string
	role peer.Role
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
	c := &Client{
		cfg:          cfg,
		destinations: map[string]*Destination{},
		sources:      map[string]*Source{},
		refused:      map[endpointKey]error{},
		mismatches:   map[mismatchKey]bool{},
	}
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

func (c *Client) start(ctx context.Context) error {
	cfg := c.cfg
	var err error
	if c.id, err = identity.Generate("connet-client"); err != nil {
		return err
	}
	if c.udp, err = cfg.network.ListenPacket(ctx, "udp", cfg.directAddr); err != nil {
		return fmt.Errorf("direct address %q: %w", cfg.directAddr, err)
	}
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
	c.tr = &quic.Transport{Conn: c.udp}
	if cfg.statelessResetKey != nil {
		key := quic.StatelessResetKey(*cfg.statelessResetKey)
		c.tr.StatelessResetKey = &key
	}
	qconf := tuning.QUIC(cfg.handshakeTimeout)

	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	c.started = time.Now()
	c.metricsReg = metrics.NewRegistry(cfg.buildVersion)
	// The status server, the only scraper, starts after the session.
	c.metrics = metrics.NewClient(c.metricsReg, func() bool { st, _ := c.session.Status(); return st.Connected }, c.pendingStreams)
	c.node = &direct.Node{
		Transport:   c.tr,
		Identity:    c.id,
		Config:      qconf,
		Logger:      cfg.logger,
		AllowDirect: c.allowDirect,
		OnPath:      func(p *peer.Peer, q *netpath.QUIC) { c.servePath(p, q) },
		SetupTime:   func(d time.Duration) { c.metrics.PathSetup("direct", d) },
		NAT:         func() peer.NAT { return c.nat.Load().(peer.NAT) },
		PunchSecret: punchSecret,
		ListenPacket: func(ctx context.Context) (net.PacketConn, error) {
			return cfg.network.ListenPacket(ctx, "udp", probeAddr(cfg.directAddr))
		},
	}
	if !cfg.birthdayPunch {
		cfg.logger.Info("birthday punching through symmetric NATs is off: such peers are reached through relays")
	}
	c.registry = peer.NewRegistry(peerLinger, c.node.Maintain)
	c.node.Registry = c.registry
	c.relays = relayclient.New(relayclient.Config{
		Transport: c.tr,
		Identity:  c.id,
		QUIC:      qconf,
		Logger:    cfg.logger,
		Peers:     c.registry,
		Secure:    (*securer)(c),
		Admit:     c.admitStream,
		OnStream: func(p *peer.Peer, rp *relayclient.Path, s netpath.Stream, endpoint string, answered func()) {
			c.serveStream(p, rp, s, endpoint, answered)
		},
		SetupTime: func(d time.Duration) { c.metrics.PathSetup("relay", d) },
		TCP:       c.relayTCP(),
	})

	ln, err := c.tr.Listen(c.id.PinnedServerConfig(wire.ALPNPeer, c.registry.Known, knownPeerWait), qconf)
	if err != nil {
		_ = c.udp.Close()
		return fmt.Errorf("listen for peers: %w", err)
	}

	if cfg.statusAddr != "" {
		if c.status, err = status.Listen(cfg.statusAddr); err != nil {
			_ = ln.Close()
			_ = c.tr.Close()
			_ = c.udp.Close()
			return err
		}
	}

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
			return status.Serve(ctx, c.status, func() any { return c.Status() }, metrics.Handler(c.metricsReg), cfg.logger)
		})
	}
	return nil
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
	c.mu.Lock()
	dsts := slices.Collect(maps.Values(c.destinations))
	srcs := slices.Collect(maps.Values(c.sources))
	c.mu.Unlock()
	for _, d := range dsts {
		_ = d.Close()
	}
	for _, s := range srcs {
		_ = s.Close()
	}
	// Each Close below waits for the goroutines its component started;
	// the order matters. The registry first: its peers' maintainers are
	// the node's dialers, and ending the peers ends their paths. Then the
	// relays, then the socket, then the client's own goroutines, and last
	// the node's, which only Accept and the maintainers start.
	c.registry.Close()
	c.relays.Close()
	_ = c.tr.Close()
	err := c.udp.Close()
	c.wg.Wait()
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
func (c *Client) applyServerState(st *pb.ServerState) {
	infos := make([]peer.Info, 0, len(st.GetPeers()))
	for _, p := range st.GetPeers() {
		info, err := peerInfo(p)
		if err != nil {
			c.cfg.logger.Warn("ignoring malformed peer from control server", "err", err)
			continue
		}
		infos = append(infos, info)
	}
	c.registry.Apply(infos)
	c.relays.Apply(st.GetRelays(), st.GetGrant())
	if nat := natFromPB(st.GetNatMapping()); c.nat.Swap(nat) != nat && nat != peer.NATUnknown {
		c.cfg.logger.Info("NAT mapping detected", "mapping", string(nat))
	}
	c.warnMismatches(infos)

	refused := map[endpointKey]error{}
	for _, r := range st.GetRefused() {
		key := endpointKey{r.GetName(), roleFromPB(r.GetRole())}
		refused[key] = fmt.Errorf("refused by control server: %w", errorFromPB(r.GetError()))
	}
	c.mu.Lock()
	old := c.refused
	c.refused = refused
	c.mu.Unlock()
	for key, err := range refused {
		if old[key] == nil {
			c.cfg.logger.Error("endpoint refused", "name", key.name, "role", key.role, "err", err)
		}
	}
}

// allowDirect tells whether some endpoint shared with the peer lets both
// sides go direct.
func (c *Client) allowDirect(st peer.State) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range st.Info.Endpoints {
		var local netpath.Route
		switch e.Role {
		case peer.Source:
			d := c.destinations[e.Name]
			if d == nil {
				continue
			}
			local = d.cfg.Route
		case peer.Destination:
			s := c.sources[e.Name]
			if s == nil {
				continue
			}
			local = s.cfg.Route
		}
		if local.AllowsDirect() && e.Route.AllowsDirect() {
			return true
		}
	}
	return false
}

// updateAnnounceLocked recomputes what the control server is told.
func (c *Client) updateAnnounceLocked() {
	var eps []*pb.Endpoint
	for _, d := range c.destinations {
		eps = append(eps, &pb.Endpoint{Name: d.cfg.Name, Role: pb.Role_ROLE_DESTINATION, Route: routeToPB(d.cfg.Route),
			RelayEncryptions: encryptionNames(d.cfg.RelayEncryptions)})
	}
	for _, s := range c.sources {
		eps = append(eps, &pb.Endpoint{Name: s.cfg.Name, Role: pb.Role_ROLE_SOURCE, Route: routeToPB(s.cfg.Route),
			RelayEncryptions: encryptionNames(s.cfg.RelayEncryptions)})
	}
	slices.SortFunc(eps, func(a, b *pb.Endpoint) int {
		if a.GetName() != b.GetName() {
			if a.GetName() < b.GetName() {
				return -1
			}
			return 1
		}
		return int(a.GetRole()) - int(b.GetRole())
	})
	c.announce.Update(func(a controlclient.Announcement) controlclient.Announcement {
		a.Endpoints = eps
		return a
	})
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
