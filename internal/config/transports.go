package config

import (
	"net"
	"slices"
	"time"
)

// Transports are our addition to the spec: servers listen on TCP (TLS 1.3
// with a stream multiplexer) beside QUIC, at the same port by default, and
// clients whose QUIC handshakes time out fall back to it.
const (
	TransportQUIC = "quic"
	TransportTCP  = "tcp"
	// DefaultQUICRetry is how often a client on TCP tries QUIC again.
	DefaultQUICRetry = 30 * time.Second
)

// IngressTransports says what an ingress listens with.
type IngressTransports struct {
	QUIC, TCP bool
	// TCPAddr is where TCP listens; empty means the host of addr at the
	// port QUIC bound (the same port number).
	TCPAddr string
}

// transports validates a transports list: empty means both (as with
// relay-encryptions, an empty list is the default), else each named once.
// transports = ["quic"] is how TCP is turned off.
func (r *resolver) transports(p keyPath, raw []string) (quic, tcp bool) {
	if len(raw) == 0 {
		return true, true
	}
	for i, t := range raw {
		switch {
		case slices.Contains(raw[:i], t):
			r.failf(p, "%q listed twice", t)
		case t == TransportQUIC:
			quic = true
		case t == TransportTCP:
			tcp = true
		default:
			r.failf(p, "unknown transport %q: want %q or %q", t, TransportQUIC, TransportTCP)
		}
	}
	return quic, tcp
}

func (r *resolver) ingressTransports(p keyPath, raw []string, tcpAddr string) IngressTransports {
	var t IngressTransports
	t.QUIC, t.TCP = r.transports(p.key("transports"), raw)
	t.TCPAddr = r.listenAddr(p.key("tcp-addr"), tcpAddr, "")
	if tcpAddr != "" && !t.TCP {
		r.failf(p.key("tcp-addr"), "set, but transports leaves %q out", TransportTCP)
	}
	return t
}

// clientTransports resolves the client's fallback: its TCP address
// (server-tcp-addr, default server-addr; empty when transports leaves tcp
// out) and how often it tries QUIC again.
func (r *resolver) clientTransports(p keyPath, cc ClientConfig, serverAddr string) (tcpAddr string, retry time.Duration) {
	quic, tcp := r.transports(p.key("transports"), cc.Transports)
	if !quic {
		r.failf(p.key("transports"), "a client needs %q (peers connect directly over it); %q is its fallback", TransportQUIC, TransportTCP)
	}
	retry = r.duration(p.key("quic-retry"), cc.QUICRetry, DefaultQUICRetry, true)
	if !tcp {
		if cc.ServerTCPAddr != "" {
			r.failf(p.key("server-tcp-addr"), "set, but transports leaves %q out", TransportTCP)
		}
		return "", retry
	}
	if cc.ServerTCPAddr == "" {
		return serverAddr, retry
	}
	addr, _ := r.dialAddr(p.key("server-tcp-addr"), cc.ServerTCPAddr, "")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", retry
	}
	return addr, retry
}
