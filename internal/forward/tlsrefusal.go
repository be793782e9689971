package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
)

// A TLS service that refuses its client does so with an alert. Under TLS
// 1.2 the alert ends the handshake, so the destination's dial fails; under
// TLS 1.3 the client's side of the handshake is over before the service
// has looked at its certificate, so the dial succeeds and the alert is
// what the first read returns. Either way the destination reports it with
// the same words, saying which service refused and, when the alert tells,
// what to change.

// TLS alerts (RFC 8446, section 6) a service sends about the client's
// certificate.
const (
	alertBadCertificate         tls.AlertError = 42
	alertUnsupportedCertificate tls.AlertError = 43
	alertCertificateRevoked     tls.AlertError = 44
	alertCertificateExpired     tls.AlertError = 45
	alertCertificateUnknown     tls.AlertError = 46
	alertUnknownCA              tls.AlertError = 48
	alertCertificateRequired    tls.AlertError = 116
)

// remoteAlert returns the alert the far side sent, if err is one: the tls
// package returns it as a *net.OpError "remote error" around an alert
// type of its own, whose text is that of the tls.AlertError of the same
// number.
func remoteAlert(err error) (text string, ok bool) {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" || oe.Err == nil {
		return "", false
	}
	return oe.Err.Error(), true
}

// serviceTLSError words a TLS failure with the service at addr. haveCert
// tells whether the destination presents a client certificate, asked
// whether the service asked for one (when known: under TLS 1.2 the alert
// that follows may say only "handshake failure"). An alert about the
// client's certificate gets a hint.
func serviceTLSError(addr string, err error, haveCert, asked bool) error {
	alert, ok := remoteAlert(err)
	if !ok {
		return fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	hint := ""
	switch {
	case !haveCert && (asked || alert == alertCertificateRequired.Error()):
		hint = " (it requires a client certificate: set cert-file and key-file)"
	case haveCert && isCertificateAlert(alert):
		hint = " (it does not accept the client certificate of cert-file)"
	}
	return fmt.Errorf("tls service %s refused the connection: %w%s", addr, err, hint)
}

// certRequestKey is the context key of the flag a handshake sets when the
// service asks for a client certificate the destination does not have.
type certRequestKey struct{}

// withCertRequestFlag returns a context for a handshake whose request for
// a client certificate sets asked (see noCertificate).
func withCertRequestFlag(ctx context.Context, asked *atomic.Bool) context.Context {
	return context.WithValue(ctx, certRequestKey{}, asked)
}

// noCertificate is the GetClientCertificate of a destination without a
// client certificate: it sends none, as Go does without the callback,
// and notes that the service asked.
func noCertificate(info *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if asked, ok := info.Context().Value(certRequestKey{}).(*atomic.Bool); ok {
		asked.Store(true)
	}
	return &tls.Certificate{}, nil
}

func isCertificateAlert(text string) bool {
	for _, a := range []tls.AlertError{alertBadCertificate, alertUnsupportedCertificate, alertCertificateRevoked,
		alertCertificateExpired, alertCertificateUnknown, alertUnknownCA, alertCertificateRequired} {
		if text == a.Error() {
			return true
		}
	}
	return false
}

// refusalWatcher is a connection to a TLS service that reports the alert
// the service ends it with, once: a TLS 1.3 service refusing the client's
// certificate does so on the first read, after a dial that succeeded.
type refusalWatcher struct {
	*tls.Conn
	addr     string
	haveCert bool
	report   func(error)
	reported atomic.Bool
}

func (c *refusalWatcher) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && c.reported.CompareAndSwap(false, true) {
		if _, ok := remoteAlert(err); ok {
			c.report(serviceTLSError(c.addr, err, c.haveCert, false))
		}
	}
	return n, err
}
