package config

import "fmt"

// fileRoot checks the directory a file destination serves (its url, key
// p) the way the destination opens it at start: it must exist and be a
// directory.
func (r *resolver) fileRoot(p keyPath, dir string) {
	info, err := r.stat(dir)
	switch {
	case err != nil:
		r.fail(p, fmt.Sprintf("cannot serve %q", dir), err)
	case !info.IsDir():
		r.failf(p, "cannot serve %q: not a directory", dir)
	}
}
