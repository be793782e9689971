package config

import (
	"crypto/x509"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/p2pconnet/connet/internal/e2ee"
	"github.com/p2pconnet/connet/internal/portmap"
)

// Client defaults from the spec.
const (
	DefaultServerAddr           = "127.0.0.1:19190"
	DefaultDirectAddr           = ":19192"
	DefaultHandshakeIdleTimeout = 5 * time.Second
)

// ClientSettings is the validated [client] section.
type ClientSettings struct {
	Token    string
	Metadata string

	// ServerAddr is the control server's host:port (UDP/QUIC).
	ServerAddr string
	// ServerName is the TLS server name to verify, the host of ServerAddr
	// unless set explicitly.
	ServerName string
	// ServerCAs are the CAs trusted for the control server; nil means the
	// system roots.
	ServerCAs *x509.CertPool

	// DirectAddr is where the client listens for peers (UDP/QUIC).
	DirectAddr string
	// StatelessResetKey is the QUIC stateless reset key, when given
	// explicitly (inline or by file). When nil, the caller should keep a
	// generated key in a file under ResetKeyCacheDir named after DirectAddr,
	// or use an ephemeral key if ResetKeyCacheDir is empty.
	StatelessResetKey *[32]byte
	// ResetKeyCacheDir is the cache directory derived from the environment
	// (see the spec's client environment section); empty if unknown.
	ResetKeyCacheDir string

	// StatusAddr is where to serve status over HTTP; empty means disabled.
	StatusAddr string
	// NatPMP is how the client asks its router for a port mapping.
	NatPMP               portmap.Mode
	HandshakeIdleTimeout time.Duration
	// RelayEncryptions is the client-wide default for endpoints, in the
	// order written.
	RelayEncryptions []e2ee.Encryption
	// MaxPendingStreams is how many streams one peer may have waiting for
	// an answer at the client's destinations; 0 means the default.
	MaxPendingStreams int

	Destinations map[string]DestinationSettings
	Sources      map[string]SourceSettings

	// Fallback is what the client tries when QUIC handshakes to the
	// control server time out.
	Fallback ClientTransports

	// BirthdayPunch says whether the client punches through symmetric
	// NATs with bursts of probes.
	BirthdayPunch BirthdayPunch
}

// ClientSettings validates the [client] section and applies the spec's
// defaults. The token comes from token-file (trimmed), else token, else the
// CONNET_TOKEN environment variable; env is usually os.Getenv and may be nil.
// Files referenced by the config (token, CAs, reset key, the endpoints'
// certificates) are read here, and a file destination's directory looked
// up, so that a missing or malformed file fails here (and in connet check)
// rather than when the client starts its endpoints.
func (c *Config) ClientSettings(env func(string) string) (ClientSettings, error) {
	r := newResolver(c, env)
	s := r.client()
	if err := r.err(); err != nil {
		return ClientSettings{}, err
	}
	return s, nil
}

func (r *resolver) client() ClientSettings {
	cc := r.cfg.Client
	p := keyPath{"client"}
	var s ClientSettings

	s.Token = r.secret(p.key("token"), p.key("token-file"), cc.Token, cc.TokenFile)
	if s.Token == "" && cc.TokenFile == "" {
		s.Token = strings.TrimSpace(r.env("CONNET_TOKEN"))
		if s.Token == "" {
			r.failf(p.key("token"), "required: set token-file or token, or the CONNET_TOKEN environment variable")
		}
	}
	s.Metadata = cc.Metadata

	var host string
	s.ServerAddr, host = r.dialAddr(p.key("server-addr"), cc.ServerAddr, DefaultServerAddr)
	s.ServerName = cc.ServerName
	if s.ServerName == "" {
		s.ServerName = host
	}
	s.ServerCAs = r.certPool(p.key("server-cas-file"), cc.ServerCAsFile)

	s.DirectAddr = r.listenAddr(p.key("direct-addr"), cc.DirectAddr, DefaultDirectAddr)
	s.StatelessResetKey = r.resetKey(p, cc.DirectStatelessResetKey, cc.DirectStatelessResetKeyFile)
	if s.StatelessResetKey == nil {
		s.ResetKeyCacheDir = cacheDir(r.env)
	}

	s.StatusAddr = r.listenAddr(p.key("status-addr"), cc.StatusAddr, "")
	s.NatPMP = oneOf(r, p.key("nat-pmp"), cc.NatPMP, portmap.ModeSystem,
		portmap.ModeSystem, portmap.ModeDial, portmap.ModeDisabled, portmap.ModeOnlyNATPMP, portmap.ModeOnlyPCP, portmap.ModeOnlyUPnP)
	s.HandshakeIdleTimeout = r.duration(p.key("handshake-idle-timeout"), cc.HandshakeIdleTimeout, DefaultHandshakeIdleTimeout, true)
	s.RelayEncryptions = r.relayEncryptions(p.key("relay-encryptions"), cc.RelayEncryptions, []e2ee.Encryption{e2ee.None})
	s.MaxPendingStreams = r.nonNegative(p.key("max-pending-streams"), cc.MaxPendingStreams)

	s.Fallback = r.clientTransports(p, cc, s.ServerAddr)
	s.BirthdayPunch = r.birthdayPunch(p, cc.BirthdayPunch)

	s.Destinations = make(map[string]DestinationSettings, len(cc.Destinations))
	for _, name := range sortedKeys(cc.Destinations) {
		s.Destinations[name] = r.destination(p.key("destinations").key(name), name, cc.Destinations[name], s.RelayEncryptions)
	}
	s.Sources = make(map[string]SourceSettings, len(cc.Sources))
	for _, name := range sortedKeys(cc.Sources) {
		s.Sources[name] = r.source(p.key("sources").key(name), name, cc.Sources[name], s.RelayEncryptions)
	}
	return s
}

// resetKeyEncoding is base32hex ("0-9A-V"), as the spec prescribes for
// direct-stateless-reset-key. Padding is optional for convenience.
var resetKeyEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// resetKey resolves the QUIC stateless reset key. A key file may hold either
// the raw 32 bytes (as connet writes generated keys) or the base32hex text.
func (r *resolver) resetKey(p keyPath, inline, file string) *[32]byte {
	if file != "" {
		fp := p.key("direct-stateless-reset-key-file")
		data, err := r.readFile(file)
		if err != nil {
			r.fail(fp, "cannot read file", err)
			return nil
		}
		if len(data) == 32 {
			return (*[32]byte)(data)
		}
		key, err := decodeResetKey(string(data))
		if err != nil {
			r.fail(fp, fmt.Sprintf("invalid key in %q: want 32 raw bytes or base32hex text", file), err)
			return nil
		}
		return key
	}
	if inline == "" {
		return nil
	}
	key, err := decodeResetKey(inline)
	if err != nil {
		r.fail(p.key("direct-stateless-reset-key"), "invalid key: want 32 bytes in base32hex", err)
		return nil
	}
	return key
}

func decodeResetKey(text string) (*[32]byte, error) {
	text = strings.TrimRight(strings.ToUpper(strings.TrimSpace(text)), "=")
	b, err := resetKeyEncoding.DecodeString(text)
	if err != nil {
		return nil, err
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("decoded to %d bytes", len(b))
	}
	return (*[32]byte)(b), nil
}
