package connet

import (
	"errors"

	"github.com/p2pconnet/connet/internal/controlclient"
	"github.com/p2pconnet/connet/internal/endpoints"
	"github.com/p2pconnet/connet/internal/untrusted"
	"github.com/p2pconnet/connet/internal/wire"
)

var (
	// ErrNoDestination reports that a source has no destination it can
	// reach right now. Every error of a failed Source.Dial that names why
	// (ErrNoPeer, ErrPeerUnreachable, ErrRouteMismatch, ErrEndpointRefused)
	// matches it too.
	ErrNoDestination = endpoints.ErrNoDestination
	// ErrNoPeer reports that no destination of the source's name is online:
	// none announced itself to the control server (or the control server has
	// not been reached).
	ErrNoPeer = endpoints.ErrNoPeer
	// ErrPeerUnreachable reports destination peers that are online but that
	// no path reaches: no direct connection came up and no relay is shared.
	ErrPeerUnreachable = endpoints.ErrPeerUnreachable
	// ErrRouteMismatch reports destinations whose route and the source's
	// have no kind of path in common (one allows only relay, the other only
	// direct).
	ErrRouteMismatch = endpoints.ErrRouteMismatch
	// ErrEndpointRefused reports a refusal: the destination refused the
	// connection (its service is down, it is busy, it does not allow this
	// source), or the control server refused the source.
	ErrEndpointRefused = endpoints.ErrEndpointRefused
	// ErrClosed reports use of a closed client, destination or source.
	ErrClosed = endpoints.ErrClosed
	// ErrEndpointExists reports a second destination or source of a name
	// the client already has.
	ErrEndpointExists = endpoints.ErrExists
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

// DialReason is the kind of the sentinel errors that say why a source could
// not open a connection. Reason is a short machine-readable name for logs
// and status pages; each also matches ErrNoDestination.
type DialReason = endpoints.DialReason

// ReasonOf returns the short name of the reason a Dial failed (see
// DialReason.Reason), or "" when err names none.
func ReasonOf(err error) string { return endpoints.ReasonOf(err) }

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
