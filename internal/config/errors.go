package config

import (
	"errors"
	"strconv"
	"strings"
)

// Error describes one problem with the configuration. Every error produced
// by this package, whether while decoding a file or while validating the
// merged result, is an *Error (possibly several joined with errors.Join), so
// callers can show or inspect where a bad value came from.
type Error struct {
	// Origin is where the offending value was set: a file path as passed to
	// Load, an overlay label such as "flag --dst-url", or "environment
	// CONNET_TOKEN". It is empty when the problem is a missing value that
	// nothing set.
	Origin string
	// Line is the 1-based line in Origin, when known (syntax errors).
	Line int
	// Column is the 1-based byte column in Line, when known; 0 otherwise.
	Column int
	// Source is the text of Line, when known, for Excerpt.
	Source string
	// Key is the full dotted key, e.g. client.destinations.web.dial-timeout
	// or server.ingress[0].cert-file. Empty for whole-file problems.
	Key string
	// Reason says what is wrong, e.g. `invalid duration "2x"`.
	Reason string
	// Err is the underlying cause, if any; it is returned by Unwrap.
	Err error
}

// Error formats the problem as "origin[:line[:column]]: key: reason[:
// cause]", on one line; Excerpt adds the line it is about.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Origin != "" {
		b.WriteString(e.Origin)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
			if e.Column > 0 {
				b.WriteByte(':')
				b.WriteString(strconv.Itoa(e.Column))
			}
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes the underlying cause to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Errors flattens err (which may be a single *Error or several joined with
// errors.Join, possibly nested) into the list of *Error values it holds, so a
// caller can present every problem, not just the first one errors.As finds.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		var ce *Error
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				walk(e)
			}
			return
		}
		if errors.As(err, &ce) {
			out = append(out, ce)
		}
	}
	walk(err)
	return out
}
