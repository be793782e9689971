// Package store keeps the small pieces of state that must survive a
// restart: keys and identities, each in its own file in a directory the
// user chose, written atomically.
package store

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeySize is the size of a QUIC stateless reset key.
const KeySize = 32

// LoadOrCreateKey reads a 32-byte key from file, creating the file with a
// fresh random key (mode 0600, parent directories 0700) if it does not exist.
func LoadOrCreateKey(file string) ([KeySize]byte, error) {
	var key [KeySize]byte
	b, err := os.ReadFile(file)
	switch {
	case err == nil:
		if len(b) != KeySize {
			return key, fmt.Errorf("store: %s: key of %d bytes, want %d", file, len(b), KeySize)
		}
		copy(key[:], b)
		return key, nil
	case !errors.Is(err, fs.ErrNotExist):
		return key, fmt.Errorf("store: %w", err)
	}
	if _, err := rand.Read(key[:]); err != nil {
		return key, fmt.Errorf("store: %w", err)
	}
	if err := WriteFile(file, key[:]); err != nil {
		return key, err
	}
	return key, nil
}

// WriteFile writes data to file atomically: readers see the old content or
// the new, never a part.
func WriteFile(file string, data []byte) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("store: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("store: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}
