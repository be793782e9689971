package config

import (
	"crypto/x509"
	"time"
)

// Relay defaults from the spec.
const (
	DefaultControlAddr      = "localhost:19189"
	DefaultHandshakeTimeout = 5 * time.Second
)

// RelaySettings is the validated [relay] section.
type RelaySettings struct {
	Token    string
	Metadata string

	// ControlAddr is the control server's host:port (UDP/QUIC).
	ControlAddr string
	// ControlName is the TLS server name to verify, the host of ControlAddr
	// unless set explicitly.
	ControlName string
	// ControlCAs are the CAs trusted for the control server; nil means the
	// system roots.
	ControlCAs *x509.CertPool

	HandshakeTimeout time.Duration

	// StatusAddr is where to serve status over HTTP; empty means disabled.
	StatusAddr string
	// StoreDir is where to persist state; empty means a fresh temporary
	// directory, as for ServerSettings.StoreDir.
	StoreDir string

	// Ingress lists the relay listeners; there is at least one.
	Ingress []RelayIngress
}

// RelaySettings validates the [relay] section. The token comes from
// token-file (trimmed), else token; one of them is required. env supplies the
// store-dir fallbacks; it may be nil.
func (c *Config) RelaySettings(env func(string) string) (RelaySettings, error) {
	r := newResolver(c, env)
	s := r.relay()
	if err := r.err(); err != nil {
		return RelaySettings{}, err
	}
	return s, nil
}

func (r *resolver) relay() RelaySettings {
	rc := r.cfg.Relay
	p := keyPath{"relay"}
	var s RelaySettings

	s.Token = r.secret(p.key("token"), p.key("token-file"), rc.Token, rc.TokenFile)
	if s.Token == "" && rc.TokenFile == "" {
		r.failf(p.key("token"), "required: set token-file or token")
	}
	s.Metadata = rc.Metadata

	var host string
	s.ControlAddr, host = r.dialAddr(p.key("control-addr"), rc.ControlAddr, DefaultControlAddr)
	s.ControlName = rc.ControlName
	if s.ControlName == "" {
		s.ControlName = host
	}
	s.ControlCAs = r.certPool(p.key("control-cas-file"), rc.ControlCAsFile)
	// A later layer's spelling drops the earlier layer's (see Merge), so
	// both are set only when one file (or the flags) gave both.
	htKey, ht := p.key("handshake-timeout"), rc.HandshakeTimeout
	if rc.HandshakeIdleTimeout != "" {
		if ht != "" {
			r.failf(p.key("handshake-idle-timeout"), "set only one of handshake-timeout and handshake-idle-timeout (two names of one setting)")
		}
		htKey, ht = p.key("handshake-idle-timeout"), rc.HandshakeIdleTimeout
	}
	s.HandshakeTimeout = r.duration(htKey, ht, DefaultHandshakeTimeout, true)

	s.StatusAddr = r.listenAddr(p.key("status-addr"), rc.StatusAddr, "")
	s.StoreDir = storeDir(rc.StoreDir, r.env)
	s.Ingress = r.relayIngresses(p.key("ingress"), rc.Ingress, DefaultRelayAddr)
	return s
}
