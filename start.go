package connet

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/p2pconnet/connet/internal/controlclient"
	"github.com/p2pconnet/connet/internal/direct"
	"github.com/p2pconnet/connet/internal/endpoints"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/relayclient"
	"github.com/p2pconnet/connet/internal/status"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/quic-go/quic-go"
)

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
	if c.udp, err = cfg.network.ListenPacket(ctx, "udp", cfg.directAddr); err != nil {
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
			return cfg.network.ListenPacket(ctx, "udp", probeAddr(cfg.directAddr))
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

// probeAddr is where the sockets for punch probes bind: the direct
// address's host, any port.
func probeAddr(directAddr string) string {
	host, _, err := net.SplitHostPort(directAddr)
	if err != nil {
		host = ""
	}
	return net.JoinHostPort(host, "0")
}
