// Package untrusted recognizes a dial that failed because the server's
// certificate could not be verified: an unknown authority (a missing or
// wrong CAs file), a name the certificate does not hold, an expired
// certificate. Unlike a network error, retrying cannot fix these, so the
// control session and the relay's join end on them when they happen on the
// first connection.
package untrusted

import (
	"crypto/tls"
	"errors"
	"fmt"
)

// ErrCertificate reports a server certificate that failed verification.
// Errors from Check wrap it together with the *tls.CertificateVerificationError,
// whose Err holds the x509 reason (x509.UnknownAuthorityError,
// x509.HostnameError, x509.CertificateInvalidError, ...).
var ErrCertificate = errors.New("control server's certificate is not trusted")

// Check returns an error wrapping ErrCertificate and the verification error
// when err's chain holds a failed certificate verification, else nil. The
// transport layers in between (QUIC's CRYPTO_ERROR) are dropped: they add
// nothing a person can act on.
func Check(addr string, err error) error {
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		return nil
	}
	return fmt.Errorf("%w: %s: %w", ErrCertificate, addr, verr)
}
