package endpoint

import (
	"fmt"
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
	return root, http.FileServerFS(root.FS()), nil
}
