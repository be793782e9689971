package connet

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/p2pconnet/connet/internal/network"
	"github.com/p2pconnet/connet/internal/portmap"
	"github.com/p2pconnet/connet/internal/quota"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire"
)

// ClientOption configures Connect.
type ClientOption func(*clientConfig) error

type clientConfig struct {
	token             string
	metadata          string
	controlAddr       string
	controlCAs        *x509.CertPool
	controlName       string
	directAddr        string
	network           Network
	statelessResetKey *[32]byte
	statusAddr        string
	natPMP            NatPMP
	handshakeTimeout  time.Duration
	buildVersion      string
	relayEncryptions  []RelayEncryption
	logger            *slog.Logger
	// tcpFallback, when set, is the control server's TCP address, used
	// when QUIC handshakes time out; empty turns the fallback off.
	tcpFallback    string
	tcpFallbackSet bool
	fallbacks      []Transport
	quicRetry      time.Duration
	// maxPendingStreams is how many streams one peer may have waiting for
	// an answer here (see endpoints.Table.Admit).
	maxPendingStreams int
	// birthdayPunch lets the client take part in birthday punches
	// through symmetric NATs (see ClientBirthdayPunch).
	birthdayPunch bool
}

// onOSNetwork tells whether the client reaches the network through the
// operating system's sockets, not through a ClientNetwork of its owner's
// (a simulated network, in tests).
func (c *clientConfig) onOSNetwork() bool {
	_, ok := c.network.(network.OS)
	return ok
}

func newClientConfig(opts []ClientOption) (*clientConfig, error) {
	cfg := &clientConfig{
		controlAddr:      "127.0.0.1:19190",
		directAddr:       ":19192",
		network:          network.OS{},
		handshakeTimeout: tuning.HandshakeTimeout,
		natPMP:           NatPMPSystem,
		relayEncryptions: []RelayEncryption{NoEncryption},
		logger:           slog.New(slog.DiscardHandler),
		birthdayPunch:    true,

		maxPendingStreams: quota.DefaultMaxPending,
	}
	for _, opt := range opts {
		if err := opt(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.token == "" {
		return nil, errors.New("a client token is required")
	}
	if !cfg.tcpFallbackSet {
		// Servers listen on TCP at the same port by default.
		cfg.tcpFallback = cfg.controlAddr
	}
	if cfg.fallbacks == nil {
		cfg.fallbacks = []Transport{TransportTCP, TransportWSS}
	}
	return cfg, nil
}

// Transport is a way to reach servers when QUIC does not get through.
type Transport string

const (
	// TransportTCP is TLS 1.3 over TCP with a stream multiplexer.
	TransportTCP Transport = "tcp"
	// TransportWSS is the same inside a WebSocket over HTTPS, through the
	// proxy HTTPS_PROXY names, if any.
	TransportWSS Transport = "wss"
)

// ClientFallbackTransports sets which transports the client falls back
// to, in this order, when its QUIC handshakes time out (default TCP, then
// WebSocket). None turns the fallback off.
func ClientFallbackTransports(ts ...Transport) ClientOption {
	return func(c *clientConfig) error {
		for _, t := range ts {
			if t != TransportTCP && t != TransportWSS {
				return fmt.Errorf("unknown fallback transport %q", t)
			}
		}
		c.fallbacks = append([]Transport{}, ts...)
		return nil
	}
}

// ClientTCPFallback sets the control server's TCP address, which the
// client falls back to (see ClientFallbackTransports) when its QUIC
// handshakes time out, as they do where UDP is blocked; relays are then
// reached over TCP at the hostports they advertise. The default is the
// control address itself (servers listen on TCP at the same port); empty
// turns the fallback off.
func ClientTCPFallback(addr string) ClientOption {
	return func(c *clientConfig) error { c.tcpFallback, c.tcpFallbackSet = addr, true; return nil }
}

// ClientQUICRetry sets how often a client that fell back to TCP tries QUIC
// again, to move back once UDP passes (default 30 s).
func ClientQUICRetry(d time.Duration) ClientOption {
	return func(c *clientConfig) error {
		if d <= 0 {
			return errors.New("QUIC retry interval must be positive")
		}
		c.quicRetry = d
		return nil
	}
}

// ClientBirthdayPunch turns the birthday punch through symmetric NATs on
// (the default) or off. Off, the client sends no probes and announces no
// punch secret, so its peers send it none either: peers that only a
// birthday punch would connect directly go through a relay instead. Some
// networks take the burst of probes (up to 2048 UDP datagrams to random
// ports of one address) for a port scan.
func ClientBirthdayPunch(on bool) ClientOption {
	return func(c *clientConfig) error { c.birthdayPunch = on; return nil }
}

// ClientToken sets the token the control server knows the client by.
func ClientToken(token string) ClientOption {
	return func(c *clientConfig) error { c.token = token; return nil }
}

// ClientMetadata sets free text sent to the control server and peers to
// help identify this client: at most 1 KiB (the control server copies it to
// every peer, and refuses more).
func ClientMetadata(metadata string) ClientOption {
	return func(c *clientConfig) error {
		if len(metadata) > wire.MaxMetadata {
			return fmt.Errorf("client metadata of %d bytes (at most %d)", len(metadata), wire.MaxMetadata)
		}
		c.metadata = metadata
		return nil
	}
}

// ClientControlAddress sets the control server's host:port (UDP).
// Default 127.0.0.1:19190.
func ClientControlAddress(addr string) ClientOption {
	return func(c *clientConfig) error { c.controlAddr = addr; return nil }
}

// ClientControlCAs sets the roots that the control server's certificate
// must chain to; by default the system's roots.
func ClientControlCAs(pool *x509.CertPool) ClientOption {
	return func(c *clientConfig) error { c.controlCAs = pool; return nil }
}

// ClientControlServerName sets the name expected in the control server's
// certificate; by default the host of the control address.
func ClientControlServerName(name string) ClientOption {
	return func(c *clientConfig) error { c.controlName = name; return nil }
}

// ClientDirectAddress sets the UDP address of the client's one socket,
// which carries the control connection and every direct peer connection.
// Default ":19192"; use ":0" for any free port.
func ClientDirectAddress(addr string) ClientOption {
	return func(c *clientConfig) error { c.directAddr = addr; return nil }
}

// Network opens sockets: UDP ones (ListenPacket), TCP listeners (Listen)
// and TCP connections (DialContext). Its methods are those of
// net.ListenConfig and net.Dialer, so a struct embedding both is one. By
// default clients, servers and relays use the operating system's; tests
// hand in a simulated network (with NATs, and UDP that can be blocked)
// instead, so that networking can be tested in process without root. It
// is the only way they reach the network (see ClientNetwork,
// ServerNetwork and RelayNetwork).
type Network = network.Network

// ClientNetwork sets the network the client reaches everything through:
// its one UDP socket at the direct address, the short-lived sockets (same
// host, any port) it probes from when punching out of a symmetric NAT,
// and the TCP and WebSocket fallback to servers and relays. On the
// operating system's network (the default) the UDP socket is a
// *net.UDPConn, on which quic-go uses batched reads, GSO and ECN; any
// other net.PacketConn works, without those optimizations. Port mapping
// (see ClientNatPMP) speaks to the gateway through the network too, and
// runs only when the UDP socket is a *net.UDPConn.
func ClientNetwork(n Network) ClientOption {
	return func(c *clientConfig) error {
		if n == nil {
			return errors.New("nil network")
		}
		c.network = n
		return nil
	}
}

// ClientDirectStatelessResetKey sets the QUIC stateless reset key of the
// client's socket. Keeping it across restarts lets peers learn at once that
// old connections are gone. By default a random key is used.
func ClientDirectStatelessResetKey(key [32]byte) ClientOption {
	return func(c *clientConfig) error { c.statelessResetKey = &key; return nil }
}

// ClientStatusAddress serves the client's status as JSON over HTTP at addr.
func ClientStatusAddress(addr string) ClientOption {
	return func(c *clientConfig) error { c.statusAddr = addr; return nil }
}

// NatPMP selects how the client asks its NAT gateway to forward a UDP port
// to its socket (the spec's nat-pmp option). The mapped address is offered
// to peers as one more candidate: with it, a peer can reach the client
// directly even behind a NAT that maps every destination to a new port.
type NatPMP = portmap.Mode

// The port mapping modes. System, Dial and Disabled are the spec's; the
// last three force one protocol, with the gateway found as System does.
const (
	// NatPMPSystem reads the gateway from the routing table and tries
	// NAT-PMP, then PCP, then UPnP-IGD. The default.
	NatPMPSystem = portmap.ModeSystem
	// NatPMPDial takes the local address of a UDP socket "connected" to the
	// control server, and the first address of its subnet as the gateway,
	// for systems (such as Android) that hide their routing table.
	NatPMPDial = portmap.ModeDial
	// NatPMPDisabled maps no port.
	NatPMPDisabled = portmap.ModeDisabled
	// NatPMPOnlyNATPMP uses only NAT-PMP (RFC 6886).
	NatPMPOnlyNATPMP = portmap.ModeOnlyNATPMP
	// NatPMPOnlyPCP uses only PCP (RFC 6887).
	NatPMPOnlyPCP = portmap.ModeOnlyPCP
	// NatPMPOnlyUPnP uses only UPnP-IGD (WANIPConnection:1).
	NatPMPOnlyUPnP = portmap.ModeOnlyUPnP
)

// ClientNatPMP sets how the client maps its port on its NAT gateway;
// default NatPMPSystem. Port mapping runs only when the client's socket is
// an operating system UDP socket (the default network's) that is
// not bound to loopback, and the control server is not reached over
// loopback: then the client and its server share a host, and the gateway
// is not between them.
func ClientNatPMP(m NatPMP) ClientOption {
	return func(c *clientConfig) error {
		switch m {
		case NatPMPSystem, NatPMPDial, NatPMPDisabled, NatPMPOnlyNATPMP, NatPMPOnlyPCP, NatPMPOnlyUPnP:
			c.natPMP = m
			return nil
		}
		return fmt.Errorf("unknown nat-pmp mode %q (want system, dial, disabled, nat-pmp, pcp or upnp)", m)
	}
}

// ClientHandshakeIdleTimeout sets how long a QUIC handshake may take.
// Default 5s.
func ClientHandshakeIdleTimeout(d time.Duration) ClientOption {
	return func(c *clientConfig) error {
		if d <= 0 {
			return errors.New("handshake idle timeout must be positive")
		}
		c.handshakeTimeout = d
		return nil
	}
}

// ClientRelayEncryptions sets the encryptions endpoints accept over relays
// when their config names none; default none only.
func ClientRelayEncryptions(es ...RelayEncryption) ClientOption {
	return func(c *clientConfig) error {
		if err := checkEncryptions(es); err != nil {
			return err
		}
		c.relayEncryptions = es
		return nil
	}
}

func checkEncryptions(es []RelayEncryption) error {
	if len(es) == 0 {
		return errors.New("no relay encryption given")
	}
	for _, e := range es {
		switch e {
		case NoEncryption, TLSEncryption, DHXCPEncryption:
		default:
			return fmt.Errorf("unknown relay encryption %q (want none, tls or dhxcp)", e)
		}
	}
	return nil
}

// ClientMaxPendingStreams sets how many streams one peer may have waiting
// at once at this client's destinations, on all its paths: opened, but not
// answered yet (the request not read yet, the destination not taking it
// yet, its service not dialed yet). A stream beyond it is refused at once,
// and the peer's other streams, and other peers, go on. 0 means the
// default, 1024; it takes the bursts of connections browsers make.
func ClientMaxPendingStreams(n int) ClientOption {
	return func(c *clientConfig) error {
		if n < 0 {
			return fmt.Errorf("max pending streams %d: must not be negative (0 means the default)", n)
		}
		c.maxPendingStreams = quota.Max(n)
		return nil
	}
}

// ClientBuildVersion sets the version reported to the control server and
// shown on the status page and in the metrics.
func ClientBuildVersion(v string) ClientOption {
	return func(c *clientConfig) error { c.buildVersion = v; return nil }
}

// ClientLogger sets the logger; by default nothing is logged.
func ClientLogger(l *slog.Logger) ClientOption {
	return func(c *clientConfig) error { c.logger = l; return nil }
}
