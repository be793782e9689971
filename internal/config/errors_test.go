package config_test

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/p2pconnet/connet/internal/config"
)

func TestErrorFormat(t *testing.T) {
	cause := errors.New("boom")
	tests := []struct {
		err  *config.Error
		want string
	}{
		{&config.Error{Origin: "a.toml", Key: "client.token", Reason: "required"}, "a.toml: client.token: required"},
		{&config.Error{Origin: "a.toml", Line: 3, Reason: "invalid TOML", Err: cause}, "a.toml:3: invalid TOML: boom"},
		{&config.Error{Key: "client.token", Reason: "required"}, "client.token: required"},
		{&config.Error{Origin: "flag --dst-url", Key: "client.destinations.x.url", Reason: "bad", Err: cause}, "flag --dst-url: client.destinations.x.url: bad: boom"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	if !errors.Is(tests[1].err, cause) {
		t.Error("Unwrap should expose the cause")
	}
}

func TestErrorsFlattens(t *testing.T) {
	a := &config.Error{Reason: "a"}
	b := &config.Error{Reason: "b"}
	c := &config.Error{Reason: "c", Err: fs.ErrNotExist}
	err := errors.Join(a, errors.Join(b, nil), fmtWrap(c), errors.New("not ours"))
	got := config.Errors(err)
	if len(got) != 3 || got[0] != a || got[1] != b || got[2] != c {
		t.Fatalf("got %v", got)
	}
	if config.Errors(nil) != nil {
		t.Fatal("nil error should give no errors")
	}
}

type wrapped struct{ err error }

func (w wrapped) Error() string { return "wrapped: " + w.err.Error() }
func (w wrapped) Unwrap() error { return w.err }

func fmtWrap(err error) error { return wrapped{err} }
