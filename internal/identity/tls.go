package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// peerServerName is the SNI of peer connections. Peers are identified by
// pinned certificates, so the name only needs to be the same on both sides.
const peerServerName = "connet-peer"

// ErrPinMismatch reports a peer whose certificate is not the one pinned for
// it: another party, or the same one with a new identity.
var ErrPinMismatch = errors.New("identity: peer presented a certificate other than the pinned one")

// ErrUnknownPeer reports a certificate that matches no known peer.
var ErrUnknownPeer = errors.New("identity: certificate of an unknown peer")

// PinnedClientConfig is the TLS config for dialing a peer whose certificate
// must be exactly der.
func (i *Identity) PinnedClientConfig(der []byte, alpn string) *tls.Config {
	want := IDOf(der)
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{i.Cert},
		ServerName:   peerServerName,
		NextProtos:   []string{alpn},
		// Chain verification is replaced by pinning below.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || IDOf(raw[0]) != want {
				return fmt.Errorf("%w %s", ErrPinMismatch, want)
			}
			return nil
		},
	}
}

// Known tells whether a peer certificate is currently allowed to connect. It
// may block until ctx ends: a peer may dial us a moment before the control
// server has told us about it, and waiting briefly is better than failing the
// handshake that punches the NAT.
type Known func(ctx context.Context, id ID) bool

// PinnedServerConfig is the TLS config for accepting peers: a client
// certificate is required and must be one that known accepts within wait.
func (i *Identity) PinnedServerConfig(alpn string, known Known, wait time.Duration) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{i.Cert},
		NextProtos:   []string{alpn},
		ClientAuth:   tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return ErrUnknownPeer
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if !known(ctx, IDOf(raw[0])) {
				return fmt.Errorf("%w %s", ErrUnknownPeer, IDOf(raw[0]))
			}
			return nil
		},
	}
}

// PeerID returns the fingerprint of the certificate the other side presented.
func PeerID(cs tls.ConnectionState) (ID, error) {
	if len(cs.PeerCertificates) == 0 {
		return ID{}, errors.New("identity: no peer certificate")
	}
	return IDOf(cs.PeerCertificates[0].Raw), nil
}
