// Package store keeps the small pieces of state that must survive a
// restart: keys and identities, each in its own file in a directory the
// user chose, written atomically and durably.
package store

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
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
	b, err := ReadFile(file)
	switch {
	case err == nil:
		if len(b) != KeySize {
			return key, fmt.Errorf("store: %s: key of %d bytes, want %d (truncated or corrupt; remove it to create a new key)", file, len(b), KeySize)
		}
		copy(key[:], b)
		return key, nil
	case !errors.Is(err, fs.ErrNotExist):
		return key, err
	}
	if _, err := rand.Read(key[:]); err != nil {
		return key, fmt.Errorf("store: %w", err)
	}
	if err := WriteFile(file, key[:]); err != nil {
		return key, err
	}
	return key, nil
}

// ErrPermissions is returned (wrapped) by ReadFile for a secret file that
// group or others may access.
var ErrPermissions = errors.New("accessible by group or others")

// ReadFile reads a secret file written by WriteFile. It refuses a file
// that is not a regular file or whose mode lets group or others in: like
// ssh with private keys, we do not tighten the mode silently, because a
// secret that was readable by others may already have leaked and the
// operator should decide whether to chmod it or to rotate it. The error
// names the file and says how to fix it. A missing file gives an error
// that matches fs.ErrNotExist.
func ReadFile(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer func() { _ = f.Close() }()
	// Stat the open file, not the name, so the check and the read see
	// the same file.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("store: %s: not a regular file", file)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("store: %s: mode %04o, %w; secrets must be 0600 (run chmod 600 %q, and consider the secret leaked)",
			file, perm, ErrPermissions, file)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", file, err)
	}
	return b, nil
}

// WriteFile writes data to file (mode 0600) atomically and durably:
// readers see the old content or the new, never a part, and once it
// returns the new content survives a crash or power loss. The data goes
// to a temporary file in the same directory, which is synced, renamed
// over file, and then the directory is synced so the rename itself is on
// disk. The temporary file never outlives the call.
func WriteFile(file string, data []byte) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	// After a successful rename this finds nothing to remove.
	defer func() { _ = os.Remove(tmp.Name()) }()
	write := func() error {
		// CreateTemp makes 0600 files already; Chmod says so plainly and
		// does not depend on it.
		if err := tmp.Chmod(0o600); err != nil {
			return err
		}
		if _, err := tmp.Write(data); err != nil {
			return err
		}
		return tmp.Sync()
	}
	if err := write(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("store: %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store: %s: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("store: %s: sync directory: %w", file, err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
