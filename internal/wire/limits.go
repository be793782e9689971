package wire

// Limits on what one client may announce. They are part of the protocol:
// the control server refuses more, and the client checks them before it
// sends. They also bound the messages the control server builds from an
// announcement (a peer's entry in a ServerState, a grant), which is what
// keeps those under their frame caps; limits_test.go checks the sums.
const (
	// MaxMetadata bounds a client's free-text metadata. The control server
	// copies it into the state of every peer sharing an endpoint name, so
	// it is meant for a host name or a short label, not for data.
	MaxMetadata = 1 << 10
	// MaxNameLen bounds an endpoint name: a name is copied into grants,
	// peers' states and every relayed stream's header.
	MaxNameLen = 256
	// MaxEndpoints bounds the endpoints of one client. A client's grant
	// lists all of them and a peer's entry all it shares with the reader;
	// at MaxNameLen each that is about 73 KiB, so a grant fits MaxGrant and
	// dozens of such peers fit one ServerState.
	MaxEndpoints = 256
	// MaxRelayEncryptions is how many relay encryptions an endpoint may
	// list: the known modes ("none", "tls", "dhxcp"), each at most once.
	MaxRelayEncryptions = 3
	// PunchSecretLen is the length of a client's punch secret, which tags
	// the probes peers send it when punching through a symmetric NAT.
	PunchSecretLen = 16
)

// Caps for messages read before their sender is authenticated. A peer
// that has only completed a TLS handshake (any certificate will do) must
// not make the reader hold much, so these are far below MaxControlMessage.
const (
	// MaxHello caps a client's Hello and a relay's RelayHello: a token,
	// MaxMetadata of metadata, a build version and, for relays, a few
	// host:port pairs.
	MaxHello = 8 << 10
	// MaxGrant caps a SignedGrant as a client presents it to a relay. The
	// grant lists the client's endpoints, at most MaxEndpoints of at most
	// MaxNameLen each (about 73 KiB), plus an id, an expiry and a
	// signature.
	MaxGrant = 96 << 10
)
