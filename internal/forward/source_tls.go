package forward

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// handshakeTimeout bounds a client's TLS handshake, so a client that
// connects and stays silent does not hold a goroutine and a socket forever.
const handshakeTimeout = 10 * time.Second

// tlsHandshake completes the TLS handshake of a tls source's client before
// any tunnel is opened: a client that fails it (no or a wrong client
// certificate under mutual TLS) never costs a connection to a destination.
func (s *Source) tlsHandshake(ctx context.Context, conn net.Conn) (net.Conn, error) {
	tc := tls.Server(conn, s.tlsConf)
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}
