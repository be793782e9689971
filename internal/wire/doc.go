// Package wire carries connet's protobuf messages over QUIC streams: length
// framing with a size cap, the ALPN names that version the protocols, and
// conversions between wire and Go types. The messages themselves live in
// package pb.
package wire

// ALPN protocol names. A breaking protocol change gets a new name, so peers
// of different versions fail the TLS handshake with a clear error instead of
// misreading each other.
const (
	ALPNControl      = "connet-control/1"
	ALPNPeer         = "connet-peer/1"
	ALPNRelay        = "connet-relay/1"
	ALPNRelayControl = "connet-relay-control/1"
)
