package connet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/network"
	"github.com/p2pconnet/connet/internal/notify"
	"github.com/p2pconnet/connet/internal/relay"
	"github.com/p2pconnet/connet/internal/runner"
	"github.com/p2pconnet/connet/internal/store"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/prometheus/client_golang/prometheus"
)

// RelayOption configures NewRelay.
type RelayOption func(*relayConfig) error

type relayConfig struct {
	token            string
	metadata         string
	controlAddr      string
	controlCAs       *x509.CertPool
	controlName      string
	ingresses        []RelayIngress
	storeDir         string
	statusAddr       string
	handshakeTimeout time.Duration
	buildVersion     string
	network          Network
	logger           *slog.Logger
}

// RelayToken sets the token the relay presents to the control server.
func RelayToken(token string) RelayOption {
	return func(c *relayConfig) error { c.token = token; return nil }
}

// RelayMetadata sets free text that identifies the relay to the control
// server.
func RelayMetadata(m string) RelayOption {
	return func(c *relayConfig) error { c.metadata = m; return nil }
}

// RelayControlAddress sets the control server's relay address (UDP);
// default "localhost:19189".
func RelayControlAddress(addr string) RelayOption {
	return func(c *relayConfig) error { c.controlAddr = addr; return nil }
}

// RelayControlCAs sets the roots the control server's certificate must
// chain to; by default the system's.
func RelayControlCAs(pool *x509.CertPool) RelayOption {
	return func(c *relayConfig) error { c.controlCAs = pool; return nil }
}

// RelayControlServerName sets the name expected in the control server's
// certificate; by default the host of the control address.
func RelayControlServerName(name string) RelayOption {
	return func(c *relayConfig) error { c.controlName = name; return nil }
}

// RelayIngressAt adds an address at which the relay accepts clients.
func RelayIngressAt(in RelayIngress) RelayOption {
	return func(c *relayConfig) error {
		var sc serverConfig
		if err := ServerRelayIngress(in)(&sc); err != nil {
			return err
		}
		c.ingresses = append(c.ingresses, sc.relayIngresses...)
		return nil
	}
}

// RelayStoreDir sets where the relay keeps its identity and keys; by
// default a new temporary directory.
func RelayStoreDir(dir string) RelayOption {
	return func(c *relayConfig) error { c.storeDir = dir; return nil }
}

// RelayStatusAddress serves the relay's status as JSON over HTTP.
func RelayStatusAddress(addr string) RelayOption {
	return func(c *relayConfig) error { c.statusAddr = addr; return nil }
}

// RelayHandshakeIdleTimeout sets how long a QUIC handshake may take.
func RelayHandshakeIdleTimeout(d time.Duration) RelayOption {
	return func(c *relayConfig) error { c.handshakeTimeout = d; return nil }
}

// RelayBuildVersion sets the version reported to the control server and
// shown on the status page and in the metrics.
func RelayBuildVersion(v string) RelayOption {
	return func(c *relayConfig) error { c.buildVersion = v; return nil }
}

// RelayNetwork sets the network the relay's ingresses listen on, UDP and
// TCP, and the one it dials the control server from (from ":0", a new
// UDP socket per attempt). By default the operating system's, whose UDP
// sockets give quic-go batched reads, GSO and ECN; tests hand in a
// simulated network.
func RelayNetwork(n Network) RelayOption {
	return func(c *relayConfig) error {
		if n == nil {
			return errors.New("nil network")
		}
		c.network = n
		return nil
	}
}

// RelayLogger sets the logger; by default nothing is logged.
func RelayLogger(l *slog.Logger) RelayOption {
	return func(c *relayConfig) error { c.logger = l; return nil }
}

// Relay is a relay server that runs apart from its control server and
// joins it with a relay token.
type Relay struct {
	cfg       *relayConfig
	server    *relay.Server
	key       *relay.GrantKey
	status    net.Listener
	tempStore string
	started   time.Time
	metrics   *prometheus.Registry
	// joined is the state of the connection to the control server.
	joined notify.Value[relay.JoinStatus]
}

// NewRelay validates the options and prepares a relay; Run starts it.
func NewRelay(opts ...RelayOption) (_ *Relay, err error) {
	cfg := &relayConfig{controlAddr: "localhost:19189", network: network.OS{}, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.token == "" {
		return nil, errors.New("a relay token is required")
	}
	if len(cfg.ingresses) == 0 {
		if err := RelayIngressAt(RelayIngress{})(cfg); err != nil {
			return nil, err
		}
	}
	r := &Relay{cfg: cfg, started: time.Now(), metrics: metrics.NewRegistry(cfg.buildVersion)}
	if r.tempStore, err = store.TempIfEmpty(&cfg.storeDir, "connet-relay-", cfg.logger); err != nil {
		return nil, err
	}
	defer store.RemoveTempOnError(r.tempStore, &err)
	r.key = relay.LoadGrantKey(filepath.Join(cfg.storeDir, "grant-key.pub"))
	// The gauge reads the server at scrape time, once it is built.
	m := metrics.NewRelay(r.metrics, func() int { return r.server.Clients() })
	if r.server, err = newRelayServer(cfg.storeDir, cfg.ingresses, cfg.handshakeTimeout, r.key.Get, cfg.network, m, cfg.logger); err != nil {
		return nil, err
	}
	if r.status, err = listenStatus(cfg.statusAddr); err != nil {
		return nil, err
	}
	return r, nil
}

// Run serves clients and keeps the relay joined to its control server
// until ctx ends, the control server refuses the relay, or its certificate
// fails verification before the first join (ErrUntrustedServer).
func (r *Relay) Run(ctx context.Context) error {
	if r.tempStore != "" {
		defer func() { _ = os.RemoveAll(r.tempStore) }()
	}
	return runner.Run(ctx, r.server.Run, r.join, func(ctx context.Context) error {
		return serveStatus(ctx, r.status, func() any { return r.Status() }, r.metrics, r.cfg.logger)
	})
}

// join keeps the relay joined to its control server, once its ingresses
// are bound, until ctx ends or the server refuses it.
func (r *Relay) join(ctx context.Context) error {
	bound := r.server.Addrs(ctx)
	if bound == nil {
		return nil
	}
	name := r.cfg.controlName
	if name == "" {
		name, _, _ = net.SplitHostPort(r.cfg.controlAddr)
	}
	id := r.server.Identity()
	return relay.Join(ctx, relay.JoinConfig{
		ControlAddr: r.cfg.controlAddr,
		TLS: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			RootCAs:      r.cfg.controlCAs,
			ServerName:   name,
			Certificates: []tls.Certificate{id.Cert},
		},
		QUIC:         tuning.QUIC(r.cfg.handshakeTimeout),
		Token:        r.cfg.token,
		Metadata:     r.cfg.metadata,
		BuildVersion: r.cfg.buildVersion,
		Hostports:    relayHostports(r.cfg.ingresses, bound),
		Key:          r.key,
		Logger:       r.cfg.logger,
		Network:      r.cfg.network,
		Status:       &r.joined,
	})
}

// Addrs returns the addresses the relay is bound to, once it is, or nil if
// ctx ends first.
func (r *Relay) Addrs(ctx context.Context) []net.Addr { return r.server.Addrs(ctx) }

// StatusAddr is the address the status page and metrics are served at,
// nil without RelayStatusAddress.
func (r *Relay) StatusAddr() net.Addr { return statusAddr(r.status) }

// RelayServerStatus is a snapshot of a relay, as its status page shows it:
// its connection to the control server, then its id and clients.
type RelayServerStatus struct {
	ProcessStatus
	Control ControlStatus `json:"control"`
	relay.Status
}

// RelayClientStatus is one client connected to a relay.
type RelayClientStatus = relay.ClientStatus

// Status returns a snapshot of the relay.
func (r *Relay) Status() RelayServerStatus {
	j := r.joined.Load()
	since := j.Since
	if since.IsZero() {
		since = r.started // still joining for the first time
	}
	return RelayServerStatus{
		ProcessStatus: ProcessStatus{Kind: "relay", Version: r.cfg.buildVersion, Started: r.started},
		Control:       ControlStatus{Server: r.cfg.controlAddr, Connected: j.Connected, LastError: j.LastError, Since: since},
		Status:        r.server.Status(),
	}
}
