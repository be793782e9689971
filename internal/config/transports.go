package config

import (
	"slices"
	"strings"
	"time"
)

// Transports are our addition to the spec: servers listen on TCP beside
// QUIC, at the same port by default, for TLS 1.3 with a stream
// multiplexer ("tcp") and for the same inside a WebSocket over HTTPS
// ("wss", which passes HTTP-only proxies); clients whose QUIC handshakes
// time out fall back to them.
const (
	TransportQUIC = "quic"
	TransportTCP  = "tcp"
	TransportWSS  = "wss"
	// DefaultQUICRetry is how often a client on TCP tries QUIC again.
	DefaultQUICRetry = 30 * time.Second
)

var allTransports = []string{TransportQUIC, TransportTCP, TransportWSS}

// IngressTransports says what an ingress listens with.
type IngressTransports struct {
	QUIC, TCP, WSS bool
	// TCPAddr is where TCP and WSS listen (one port: the TLS handshake
	// tells them apart); empty means the host of addr at the port QUIC
	// bound (the same port number).
	TCPAddr string
}

// transports validates a transports list: empty means all (as with
// relay-encryptions, an empty list is the default), else each known one
// named once. transports = ["quic"] is how TCP is turned off.
func (r *resolver) transports(p keyPath, raw []string) map[string]bool {
	if len(raw) == 0 {
		return map[string]bool{TransportQUIC: true, TransportTCP: true, TransportWSS: true}
	}
	set := map[string]bool{}
	for _, t := range raw {
		switch {
		case set[t]:
			r.failf(p, "%q listed twice", t)
		case slices.Contains(allTransports, t):
			set[t] = true
		default:
			r.failf(p, "unknown transport %q: want %s", t, strings.Join(quoted(allTransports), ", "))
		}
	}
	return set
}

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = `"` + s + `"`
	}
	return out
}

func (r *resolver) ingressTransports(p keyPath, raw []string, tcpAddr string) IngressTransports {
	set := r.transports(p.key("transports"), raw)
	t := IngressTransports{QUIC: set[TransportQUIC], TCP: set[TransportTCP], WSS: set[TransportWSS]}
	t.TCPAddr = r.listenAddr(p.key("tcp-addr"), tcpAddr, "")
	if tcpAddr != "" && !t.TCP && !t.WSS {
		r.failf(p.key("tcp-addr"), "set, but transports has neither %q nor %q", TransportTCP, TransportWSS)
	}
	return t
}

// ClientTransports is the client's fallback when QUIC handshakes to the
// control server time out.
type ClientTransports struct {
	// TCP and WSS say which fallbacks are tried, TCP first.
	TCP, WSS bool
	// Addr is the control server's TCP address for them.
	Addr string
	// QUICRetry is how often a client on TCP tries QUIC again.
	QUICRetry time.Duration
}

// clientTransports resolves transports, server-tcp-addr (default
// server-addr) and quic-retry.
func (r *resolver) clientTransports(p keyPath, cc ClientConfig, serverAddr string) ClientTransports {
	set := r.transports(p.key("transports"), cc.Transports)
	if !set[TransportQUIC] {
		r.failf(p.key("transports"), "a client needs %q (peers connect directly over it); %q and %q are its fallbacks", TransportQUIC, TransportTCP, TransportWSS)
	}
	t := ClientTransports{TCP: set[TransportTCP], WSS: set[TransportWSS], Addr: serverAddr}
	t.QUICRetry = r.duration(p.key("quic-retry"), cc.QUICRetry, DefaultQUICRetry, true)
	if cc.ServerTCPAddr != "" {
		if !t.TCP && !t.WSS {
			r.failf(p.key("server-tcp-addr"), "set, but transports has neither %q nor %q", TransportTCP, TransportWSS)
		}
		t.Addr, _ = r.dialAddr(p.key("server-tcp-addr"), cc.ServerTCPAddr, "")
	}
	return t
}
