package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// resolver turns raw values into typed settings for one *Settings call and
// gathers every problem it finds, so a user fixes a config in one round
// instead of one error at a time. Its inputs from the outside world (the
// environment and the file system) are fields, never globals, so tests and
// fuzzing can replace them.
type resolver struct {
	cfg      *Config
	env      func(string) string
	readFile func(string) ([]byte, error)
	stat     func(string) (fs.FileInfo, error)
	errs     []error
}

func newResolver(cfg *Config, env func(string) string) *resolver {
	if env == nil {
		env = func(string) string { return "" }
	}
	return &resolver{cfg: cfg, env: env, readFile: readFile, stat: os.Stat}
}

// fail records a problem with key p, naming whoever set it.
func (r *resolver) fail(p keyPath, reason string, err error) {
	r.errs = append(r.errs, &Error{Origin: r.cfg.originOf(p), Key: p.String(), Reason: reason, Err: err})
}

// failf is fail with a formatted reason and no underlying cause.
func (r *resolver) failf(p keyPath, format string, args ...any) {
	r.fail(p, fmt.Sprintf(format, args...), nil)
}

// err returns all recorded problems joined, or nil.
func (r *resolver) err() error {
	return errors.Join(r.errs...)
}
