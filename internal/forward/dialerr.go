package forward

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// reasoner is what the errors of a failed connet.Source.DialFrom carry
// (connet.DialReason): a short name of why no tunnel could be opened.
type reasoner interface{ Reason() string }

// dialReason is the "reason" attribute of a failed dial's log line, or
// nothing when the error names no reason (the source was closed, say).
func dialReason(err error) slog.Attr {
	var r reasoner
	if errors.As(err, &r) {
		return slog.String("reason", r.Reason())
	}
	return slog.Attr{}
}

// dialStatus is the HTTP status that answers a request whose tunnel could
// not be opened: 503 while no destination is online at all (it may come
// back), 502 when one was found but did not take the connection.
func dialStatus(err error) int {
	var r reasoner
	if errors.As(err, &r) && r.Reason() == "no-peer" {
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

// dialAnswers are the short reasons an HTTP client is told, by the reason
// names of connet.DialReason.
var dialAnswers = map[string]string{
	"no-peer":          "no destination peer online",
	"peer-unreachable": "no path reaches a destination peer",
	"route-mismatch":   "the routes of this source and the destination have no path in common",
	"endpoint-refused": "the destination refused the connection",
}

// answerDialError answers a request whose tunnel could not be opened, or
// whose exchange with the service failed, with its status and a short
// reason. The error itself names the destination peer and, when that peer
// could not reach its service, the service's address and the dial error:
// the caller logs it, and the client, who may be anyone who reaches the
// source, is told only what kind of failure it was.
func answerDialError(w http.ResponseWriter, err error) {
	code := dialStatus(err)
	reason := "the service did not answer"
	var r reasoner
	if errors.As(err, &r) {
		if a, ok := dialAnswers[r.Reason()]; ok {
			reason = fmt.Sprintf("%s (%s)", a, r.Reason())
		}
	}
	http.Error(w, fmt.Sprintf("connet: %d %s: %s", code, http.StatusText(code), reason), code)
}
