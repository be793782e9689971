package observation

import (
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"google.golang.org/protobuf/proto"
)

// signingContext comes before the observation in what a relay signs: the
// relay's identity key also signs its TLS handshakes, and the context
// keeps a signature of one kind from passing for the other.
const signingContext = "connet relay observation v1\x00"

// ErrInvalid reports a signed observation that does not check out: a
// relay other than the signer's, a bad signature, another client's, or a
// malformed one.
var ErrInvalid = errors.New("observation: invalid")

// Sign is relay's word that it saw client's packets come from observed.
func Sign(relay *identity.Identity, client identity.ID, observed netip.AddrPort) (*pb.SignedObservation, error) {
	key, ok := relay.Cert.PrivateKey.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("observation: relay key is a %T, not Ed25519", relay.Cert.PrivateKey)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pb.Observation{ClientId: client[:], Observed: wire.FromAddrPort(observed)})
	if err != nil {
		return nil, fmt.Errorf("observation: %w", err)
	}
	return &pb.SignedObservation{RelayId: relay.ID[:], Observation: b, Signature: ed25519.Sign(key, signed(b))}, nil
}

// Verify checks that so was signed by the relay whose certificate is
// relayCert, about client, and returns the address the relay saw.
func Verify(relayCert []byte, so *pb.SignedObservation, client identity.ID) (netip.AddrPort, error) {
	if rid, err := identity.ParseID(so.GetRelayId()); err != nil || rid != identity.IDOf(relayCert) {
		return netip.AddrPort{}, fmt.Errorf("%w: not signed by relay %s", ErrInvalid, identity.IDOf(relayCert))
	}
	cert, err := x509.ParseCertificate(relayCert)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: relay certificate: %w", ErrInvalid, err)
	}
	key, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok || !ed25519.Verify(key, signed(so.GetObservation()), so.GetSignature()) {
		return netip.AddrPort{}, fmt.Errorf("%w: bad signature", ErrInvalid)
	}
	var o pb.Observation
	if err := proto.Unmarshal(so.GetObservation(), &o); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if id, err := identity.ParseID(o.GetClientId()); err != nil || id != client {
		return netip.AddrPort{}, fmt.Errorf("%w: about another client", ErrInvalid)
	}
	observed, err := wire.ToAddrPort(o.GetObserved())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return observed, nil
}

func signed(observation []byte) []byte {
	return append([]byte(signingContext), observation...)
}
