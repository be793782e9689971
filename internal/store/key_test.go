package store

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoadOrCreateKeyPersists(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sub", "reset.key")
	k1, err := LoadOrCreateKey(file)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKey(file)
	if err != nil {
		t.Fatal(err)
	}
	if k1 != k2 {
		t.Fatal("second load returned a different key")
	}
	if k1 == ([KeySize]byte{}) {
		t.Fatal("key is all zeros")
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestLoadOrCreateKeyRejectsWrongSize(t *testing.T) {
	file := filepath.Join(t.TempDir(), "reset.key")
	if err := os.WriteFile(file, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(file); err == nil {
		t.Fatal("a 5-byte key file was accepted")
	}
}
