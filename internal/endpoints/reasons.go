package endpoints

import "errors"

// Why a source could not open a connection; the root package documents
// each.
var (
	ErrNoPeer          error = &DialReason{"no-peer", "no destination peer online"}
	ErrPeerUnreachable error = &DialReason{"peer-unreachable", "destination peer unreachable"}
	ErrRouteMismatch   error = &DialReason{"route-mismatch", "route mismatch with the destination"}
	ErrEndpointRefused error = &DialReason{"endpoint-refused", "endpoint refused"}
)

// DialReason is the kind of the sentinel errors that say why a source could
// not open a connection. Reason is a short machine-readable name for logs
// and status pages; each also matches ErrNoDestination.
type DialReason struct {
	reason, text string
}

func (r *DialReason) Error() string { return r.text }

// Reason is the short name of the reason: no-peer, peer-unreachable,
// route-mismatch or endpoint-refused.
func (r *DialReason) Reason() string { return r.reason }

// Is makes every reason match ErrNoDestination.
func (r *DialReason) Is(target error) bool { return target == ErrNoDestination }

// ReasonOf returns the short name of the reason a Dial failed (see
// DialReason.Reason), or "" when err names none.
func ReasonOf(err error) string {
	var r *DialReason
	if errors.As(err, &r) {
		return r.reason
	}
	return ""
}
