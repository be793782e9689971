// Package logs holds what connet's log lines share: values that read the
// same in text and in JSON (addresses as strings, durations as numbers of
// milliseconds), the wording of how a QUIC connection ended, and Repeats,
// which keeps a failure that repeats for every connection from flooding
// the log.
package logs

import (
	"errors"
	"log/slog"
	"math"
	"net"
	"time"

	"github.com/quic-go/quic-go"
)

// LevelFine is connet's "fine" log level: more verbose than slog.LevelDebug,
// for path probing and candidate details that would drown debug output.
const LevelFine = slog.LevelDebug - 4

// Millis logs a duration as a number of milliseconds (to the microsecond),
// so JSON consumers get a number in a known unit rather than nanoseconds.
// Keys that carry one end in "_ms".
type Millis time.Duration

func (d Millis) LogValue() slog.Value {
	return slog.Float64Value(math.Round(float64(d)/float64(time.Microsecond)) / 1000)
}

// Addr logs a net.Addr as its string: without it, JSON shows the struct
// (IP as base64, Port, Zone). A nil address logs as "".
func Addr(a net.Addr) slog.LogValuer { return addr{a} }

type addr struct{ a net.Addr }

func (a addr) LogValue() slog.Value {
	if a.a == nil {
		return slog.StringValue("")
	}
	return slog.StringValue(a.a.String())
}

// Err is an "err" attribute for err, or nothing at all when err is nil, so
// that no line says err=<nil>.
func Err(err error) slog.Attr { return ErrKey("err", err) }

// ErrKey is Err under another key.
func ErrKey(key string, err error) slog.Attr {
	if err == nil {
		return slog.Attr{}
	}
	return slog.String(key, err.Error())
}

// CodeGraceful is the application error code of a QUIC connection closed
// on purpose, by either side: a client or relay leaving, a server
// stopping.
const CodeGraceful quic.ApplicationErrorCode = 0

// Closed words the end of a QUIC connection for a log line or a status
// page. A graceful close by the other side becomes "<other> stopping" (a
// server, a relay) or "<other> closed" rather than quic-go's "Application
// error 0x0 (remote)"; the message the far side gave, when it gave one,
// is used instead (connet's own say "client leaving", "control server
// stopping"...). Any other error is returned as it is. other names the far
// side: "control server", "relay", "client", "peer".
func Closed(err error, other string) error {
	var aerr *quic.ApplicationError
	if !errors.As(err, &aerr) || aerr.ErrorCode != CodeGraceful {
		return err
	}
	if !aerr.Remote {
		return errors.New("closed by this side")
	}
	verb := " closed the connection"
	switch other {
	case "control server", "relay", "server":
		verb = " stopping"
	}
	if aerr.ErrorMessage != "" {
		return errors.New(aerr.ErrorMessage)
	}
	return errors.New(other + verb)
}
