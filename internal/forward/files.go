package forward

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// newFileServer serves the directory at path over HTTP: listings, Range
// requests and content types as http.FileServer does them. It serves
// through an os.Root, so neither ".." nor a symlink pointing outside the
// directory can reach a file outside it. What it does not serve it does not
// list either: symlinks leading outside the root, and unless dotfiles is
// set, names starting with '.' (see hiddenName).
func newFileServer(path string, dotfiles bool) (*os.Root, http.Handler, error) {
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
	return root, http.FileServerFS(rootFS{FS: root.FS(), escapes: escapes, dotfiles: dotfiles}), nil
}

// rootFS is the root's file system as the file server sees it: hidden
// names and attempts to leave the root do not exist (404), and directory
// listings leave out what would not be served.
type rootFS struct {
	fs.FS
	escapes  error
	dotfiles bool
}

func (r rootFS) Open(name string) (fs.File, error) {
	if !r.dotfiles && hiddenName(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	f, err := r.FS.Open(name)
	if err != nil {
		if r.escapes != nil && errors.Is(err, r.escapes) {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return nil, err
	}
	// The root's files are *os.File; only a directory's listing changes.
	if file, ok := f.(*os.File); ok {
		if info, err := file.Stat(); err == nil && info.IsDir() {
			return listedDir{File: file, name: name, fs: r}, nil
		}
	}
	return f, nil
}

// shows reports whether the entry e of directory dir is listed: a name the
// server would serve, and for a symlink, one that resolves inside the root
// (a symlink that leads outside or nowhere cannot be served).
func (r rootFS) shows(dir string, e fs.DirEntry) bool {
	name := path.Join(dir, e.Name())
	if !r.dotfiles && hiddenName(name) {
		return false
	}
	if e.Type()&fs.ModeSymlink != 0 {
		if _, err := fs.Stat(r.FS, name); err != nil {
			return false
		}
	}
	return true
}

// hiddenName reports whether the slash-separated path name (as fs.FS takes
// it, "." for the root) has a component starting with '.': .env, .git/,
// .htpasswd and their like hold what a site should not show. The one
// exception is .well-known at the top, which RFC 8615 makes public by
// design (ACME challenges, security.txt); names inside it are still hidden
// when they start with '.'.
func hiddenName(name string) bool {
	if name == "." {
		return false
	}
	for i, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") && (i > 0 || part != ".well-known") {
			return true
		}
	}
	return false
}

// listedDir is a directory of the root whose listing leaves out what
// rootFS.shows would not show.
type listedDir struct {
	*os.File
	name string
	fs   rootFS
}

func (d listedDir) ReadDir(n int) ([]fs.DirEntry, error) {
	// With n > 0, an empty result must come with an error (fs.ReadDirFile),
	// so read on while a batch is filtered away entirely; each batch moves
	// the directory's offset on, so this ends.
	for {
		entries, err := d.File.ReadDir(n)
		kept := entries[:0]
		for _, e := range entries {
			if d.fs.shows(d.name, e) {
				kept = append(kept, e)
			}
		}
		if len(kept) > 0 || err != nil || n <= 0 {
			return kept, err
		}
	}
}
