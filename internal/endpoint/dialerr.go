package endpoint

import (
	"errors"
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
