package logs

import (
	"errors"
	"testing"
)

func TestJoinIsOneLine(t *testing.T) {
	if Join(nil, nil) != nil {
		t.Fatal("Join of nothing is not nil")
	}
	a, b := errors.New("tcp: connection refused"), errors.New("wss: connection refused")
	err := Join(a, nil, b)
	if got := err.Error(); got != "tcp: connection refused; wss: connection refused" {
		t.Errorf("text %q", got)
	}
	if !errors.Is(err, a) || !errors.Is(err, b) {
		t.Error("the joined errors are not reachable with errors.Is")
	}
}
