package logs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// TestJSONValues logs through slog's JSON handler and checks the types a
// consumer gets: a number of milliseconds, an address string, no err key
// for a nil error.
func TestJSONValues(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x",
		"rtt_ms", Millis(1500*time.Microsecond),
		"addr", Addr(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}),
		"none", Addr(nil),
		Err(nil),
		ErrKey("reason", errors.New("boom")))
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["rtt_ms"] != 1.5 || rec["addr"] != "127.0.0.1:9" || rec["none"] != "" || rec["reason"] != "boom" {
		t.Errorf("got %v", rec)
	}
	if _, ok := rec["err"]; ok {
		t.Errorf("a nil error was logged: %v", rec)
	}
}

func TestClosed(t *testing.T) {
	for _, tc := range []struct {
		err   error
		other string
		want  string
	}{
		{&quic.ApplicationError{Remote: true, ErrorCode: CodeGraceful}, "control server", "control server stopping"},
		{&quic.ApplicationError{Remote: true, ErrorCode: CodeGraceful}, "relay", "relay stopping"},
		{&quic.ApplicationError{Remote: true, ErrorCode: CodeGraceful}, "peer", "peer closed the connection"},
		{fmt.Errorf("read: %w", &quic.ApplicationError{Remote: true, ErrorCode: CodeGraceful, ErrorMessage: "client leaving"}), "client", "client leaving"},
		{&quic.ApplicationError{Remote: false, ErrorCode: CodeGraceful}, "relay", "closed by this side"},
		// Not graceful: the error as it is.
		{&quic.ApplicationError{Remote: true, ErrorCode: 2, ErrorMessage: "no packets"}, "relay", (&quic.ApplicationError{Remote: true, ErrorCode: 2, ErrorMessage: "no packets"}).Error()},
		{errors.New("other"), "relay", "other"},
	} {
		if got := Closed(tc.err, tc.other).Error(); got != tc.want {
			t.Errorf("Closed(%v, %q) = %q, want %q", tc.err, tc.other, got, tc.want)
		}
	}
	if Closed(nil, "relay") != nil {
		t.Error("Closed(nil) is not nil")
	}
}
