package endpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
)

// newFileServer serves the directory at path over HTTP: listings, Range
// requests and content types as http.FileServer does them. It serves
// through an os.Root, so neither ".." nor a symlink pointing outside the
// directory can reach a file outside it.
func newFileServer(path string) (*os.Root, http.Handler, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("file root: %w", err)
	}
	if !info.IsDir() {
		return nil, nil, fmt.Errorf("file root %s: not a directory", path)
	}
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, nil, fmt.Errorf("file root: %w", err)
	}
	// os.Root refuses an escaping symlink with an error of its own, which
	// http.FileServer can only answer with 500. The error is not exported,
	// so learn it from a path that always escapes.
	var escapes error
	if _, err := root.Open(".."); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			escapes = pe.Err
		}
	}
	return root, http.FileServerFS(rootFS{root.FS(), escapes}), nil
}

// rootFS answers an attempt to leave the root as a permission error, so the
// client gets 403 Forbidden.
type rootFS struct {
	fs.FS
	escapes error
}

func (r rootFS) Open(name string) (fs.File, error) {
	f, err := r.FS.Open(name)
	if err != nil && r.escapes != nil && errors.Is(err, r.escapes) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return f, err
}
