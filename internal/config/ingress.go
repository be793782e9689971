package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Ingress is a validated QUIC listener that presents a TLS certificate to the
// clients (or relays) connecting to it.
type Ingress struct {
	// Addr is the [host]:port to listen on (UDP).
	Addr        string
	Certificate tls.Certificate
	Restriction CIDRRestriction
	Transports  IngressTransports
}

// RelayIngress is a validated relay listener.
type RelayIngress struct {
	// Addr is the [host]:port to listen on (UDP).
	Addr string
	// Hostports are the host:port values the control server advertises to
	// clients for reaching this listener; every entry has a port.
	Hostports   []string
	Restriction CIDRRestriction
	// MaxClientStreams and MaxPendingStreams are per-client quotas; 0
	// means the relay's default.
	MaxClientStreams  int
	MaxPendingStreams int
	Transports        IngressTransports
}

// ingresses resolves a list of certificate-bearing listeners. At least one
// is required because a QUIC server cannot run without a certificate; addr
// defaults to defAddr for each entry.
func (r *resolver) ingresses(p keyPath, raw []IngressConfig, defAddr string) []Ingress {
	if len(raw) == 0 {
		r.failf(p, "at least one ingress with cert-file and key-file is required (addr defaults to %q)", defAddr)
		return nil
	}
	out := make([]Ingress, 0, len(raw))
	for i, in := range raw {
		ip := p.index(i)
		ing := Ingress{
			Addr:        r.listenAddr(ip.key("addr"), in.Addr, defAddr),
			Restriction: r.cidrRestriction(ip, in.AllowCIDRs, in.DenyCIDRs),
		}
		ing.Certificate, _ = r.keyPair(ip.key("cert-file"), ip.key("key-file"), in.CertFile, in.KeyFile)
		ing.Transports = r.ingressTransports(ip, in.Transports, in.TCPAddr)
		out = append(out, ing)
	}
	return out
}

// relayIngresses resolves relay listeners; with none configured a single
// listener on defAddr is used, as the spec prescribes.
func (r *resolver) relayIngresses(p keyPath, raw []RelayIngressConfig, defAddr string) []RelayIngress {
	if len(raw) == 0 {
		raw = []RelayIngressConfig{{}}
	}
	out := make([]RelayIngress, 0, len(raw))
	for i, in := range raw {
		ip := p.index(i)
		addr := r.listenAddr(ip.key("addr"), in.Addr, defAddr)
		out = append(out, RelayIngress{
			Addr:              addr,
			Hostports:         r.hostports(ip.key("hostports"), in.Hostports, addr),
			Restriction:       r.cidrRestriction(ip, in.AllowCIDRs, in.DenyCIDRs),
			MaxClientStreams:  r.nonNegative(ip.key("max-client-streams"), in.MaxClientStreams),
			MaxPendingStreams: r.nonNegative(ip.key("max-pending-streams"), in.MaxPendingStreams),
			Transports:        r.ingressTransports(ip, in.Transports, in.TCPAddr),
		})
	}
	return out
}

// nonNegative checks a count where 0 means the default.
func (r *resolver) nonNegative(p keyPath, n int) int {
	if n < 0 {
		r.failf(p, "invalid value %d: must not be negative (0 means the default)", n)
		return 0
	}
	return n
}

// hostports fills in the advertised relay addresses: by default
// localhost:<port of addr>, and any entry without a port gets the port of
// addr, so that "relay.example.com" is enough when the ports agree.
func (r *resolver) hostports(p keyPath, raw []string, addr string) []string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil // addr itself has been reported already
	}
	if len(raw) == 0 {
		raw = []string{"localhost"}
	}
	out := make([]string, 0, len(raw))
	for i, hp := range raw {
		ip := p.index(i)
		host, hpPort, err := net.SplitHostPort(hp)
		if err != nil {
			// No port: the entry is a bare host, possibly a bracketed or
			// plain IPv6 literal.
			bracketed := strings.HasPrefix(hp, "[") && strings.HasSuffix(hp, "]")
			host, hpPort = hp, port
			if bracketed {
				host = hp[1 : len(hp)-1]
			}
			if strings.ContainsAny(host, "[]") {
				r.fail(ip, fmt.Sprintf("invalid host[:port] %q", hp), err)
				continue
			}
			if bracketed || strings.Contains(host, ":") {
				if _, perr := netip.ParseAddr(host); perr != nil {
					r.fail(ip, fmt.Sprintf("invalid host[:port] %q: neither host:port nor an IPv6 address", hp), perr)
					continue
				}
			}
		} else if err := checkPort(hpPort, false); err != nil {
			r.fail(ip, fmt.Sprintf("invalid host[:port] %q", hp), err)
			continue
		}
		if host == "" {
			r.failf(ip, "invalid host[:port] %q: host is required", hp)
			continue
		}
		if hpPort == "0" {
			r.failf(ip, "%q has no port and the listen address %q has port 0; set an explicit port", hp, addr)
			continue
		}
		out = append(out, net.JoinHostPort(host, hpPort))
	}
	return out
}
