package connet

import (
	"errors"

	"github.com/p2pconnet/connet/internal/controlclient"
	"github.com/p2pconnet/connet/internal/untrusted"
	"github.com/p2pconnet/connet/internal/wire"
)

var (
	// ErrNoDestination reports that a source has no destination it can
	// reach right now.
	ErrNoDestination = errors.New("connet: no reachable destination")
	// ErrClosed reports use of a closed client, destination or source.
	ErrClosed = errors.New("connet: closed")
	// ErrEndpointExists reports a second destination or source of a name
	// the client already has.
	ErrEndpointExists = errors.New("connet: endpoint already exists")
	// ErrRefused reports that the control server refused the client (a bad
	// token or a forbidden address). It is wrapped with an *Error.
	ErrRefused = controlclient.ErrAuth
	// ErrUntrustedServer reports that the control server's certificate
	// failed verification on the first connection: no CA that signed it
	// (ClientControlCAs, RelayControlCAs), a name it does not hold
	// (ClientControlServerName, RelayControlServerName), or an expired
	// certificate. Retrying cannot fix these, so Connect and Relay.Run end
	// with it. The error also wraps the *tls.CertificateVerificationError;
	// errors.As finds the x509 reason (x509.UnknownAuthorityError,
	// x509.HostnameError, x509.CertificateInvalidError). Once connected,
	// the client and the relay retry every failure.
	ErrUntrustedServer = untrusted.ErrCertificate
)

// ErrorCode classifies an Error.
type ErrorCode int32

// Error codes, as carried by the protocol.
const (
	ErrorUnspecified           ErrorCode = 0
	ErrorAuthFailed            ErrorCode = 1
	ErrorAddrForbidden         ErrorCode = 2
	ErrorEndpointForbidden     ErrorCode = 3
	ErrorBadRequest            ErrorCode = 4
	ErrorDestinationNotFound   ErrorCode = 5
	ErrorDestinationDialFailed ErrorCode = 6
	ErrorNotAuthorized         ErrorCode = 7
	ErrorLimit                 ErrorCode = 8
)

// Error is an error reported by the other side: the control server or a
// peer. Branch on Code.
type Error = wire.Error

// CodeOf returns the code of the *Error in err's chain, or
// ErrorUnspecified.
func CodeOf(err error) ErrorCode {
	var e *wire.Error
	if errors.As(err, &e) {
		return ErrorCode(e.Code)
	}
	return ErrorUnspecified
}
