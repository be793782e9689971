package e2ee

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/netpath"
)

// alpnTLS names the protocol inside the relayed stream.
const alpnTLS = "connet-e2ee/1"

// wrapTLS runs TLS 1.3 over the relayed stream, the source as client, each
// side presenting its identity certificate and accepting only the other's
// pinned one. Records then travel inside TLS, so the end of each direction
// is authenticated too (TLS alone reports a cut stream as a clean EOF).
func wrapTLS(ctx context.Context, s netpath.Stream, initiator bool, local *identity.Identity, peerDER []byte) (netpath.Stream, error) {
	var tc *tls.Conn
	if initiator {
		tc = tls.Client(streamConn{s}, local.PinnedClientConfig(peerDER, alpnTLS))
	} else {
		want := identity.IDOf(peerDER)
		tc = tls.Server(streamConn{s}, &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{local.Cert},
			NextProtos:   []string{alpnTLS},
			ClientAuth:   tls.RequireAnyClientCert,
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 || identity.IDOf(raw[0]) != want {
					return errors.New("peer did not present the pinned certificate")
				}
				return nil
			},
		})
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	_ = s.SetDeadline(time.Time{})
	return newRecords(tlsTransport{Conn: tc, s: s}, plain{}, plain{}), nil
}

// plain leaves bodies as they are: TLS already protects them.
type plain struct{}

func (plain) seal(dst, plaintext []byte) ([]byte, error) { return append(dst, plaintext...), nil }
func (plain) open(dst, body []byte) ([]byte, error)      { return append(dst, body...), nil }
func (plain) overhead() int                              { return 0 }

// tlsTransport carries records over TLS on the relayed stream.
type tlsTransport struct {
	*tls.Conn
	s netpath.Stream
}

// CloseWrite sends TLS close_notify, then ends the stream's sending side.
func (t tlsTransport) CloseWrite() error {
	if err := t.Conn.CloseWrite(); err != nil {
		return err
	}
	return t.s.CloseWrite()
}

func (t tlsTransport) Close() error { return t.s.Close() }
func (t tlsTransport) Reset()       { t.s.Reset() }

// streamConn presents a stream as the net.Conn crypto/tls wants.
type streamConn struct{ netpath.Stream }

func (streamConn) LocalAddr() net.Addr  { return relayedAddr{} }
func (streamConn) RemoteAddr() net.Addr { return relayedAddr{} }

type relayedAddr struct{}

func (relayedAddr) Network() string { return "relayed" }
func (relayedAddr) String() string  { return "relayed" }
