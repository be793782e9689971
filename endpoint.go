package connet

import (
	"github.com/p2pconnet/connet/internal/e2ee"
	"github.com/p2pconnet/connet/internal/netpath"
)

// Route says which kinds of path an endpoint may use.
type Route = netpath.Route

// Routes, as in the config files.
const (
	RouteAny    = netpath.RouteAny
	RouteDirect = netpath.RouteDirect
	RouteRelay  = netpath.RouteRelay
)

// ParseRoute parses "any", "direct" or "relay"; empty means any.
func ParseRoute(s string) (Route, error) { return netpath.ParseRoute(s) }

// RelayEncryption is how a relayed connection is encrypted end to end, so
// that the relay cannot read it.
type RelayEncryption = e2ee.Encryption

// Relay encryptions. With several allowed, a connection uses the first of
// tls, dhxcp, none that both ends allow; none at all is an error on both
// sides.
const (
	// NoEncryption trusts the relay (it still cannot read the hops, which
	// QUIC encrypts, but it sees what it forwards).
	NoEncryption = e2ee.None
	// TLSEncryption runs TLS 1.3 inside the relayed stream, with the
	// clients' pinned certificates.
	TLSEncryption = e2ee.TLS
	// DHXCPEncryption is an ephemeral X25519 exchange signed with the
	// pinned certificates, then ChaCha20-Poly1305 records.
	DHXCPEncryption = e2ee.DHXCP
)
