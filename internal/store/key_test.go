package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

func TestLoadOrCreateKeyRejectsTruncatedFileByName(t *testing.T) {
	file := filepath.Join(t.TempDir(), "reset.key")
	// A crash of a writer without fsync could leave an empty file.
	for _, size := range []int{0, KeySize - 1, KeySize + 1} {
		if err := os.WriteFile(file, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateKey(file)
		if err == nil {
			t.Fatalf("a %d-byte key file was accepted", size)
		}
		if !strings.Contains(err.Error(), file) {
			t.Fatalf("error %q does not name %s", err, file)
		}
	}
}

func TestReadFileRefusesLooseMode(t *testing.T) {
	file := filepath.Join(t.TempDir(), "reset.key")
	if err := WriteFile(file, make([]byte, KeySize)); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		if err := os.Chmod(file, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateKey(file)
		if !errors.Is(err, ErrPermissions) {
			t.Fatalf("mode %04o: got %v, want ErrPermissions", mode, err)
		}
		if !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("error %q does not name the file and the fix", err)
		}
		// Refused, not silently fixed.
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Fatalf("mode changed to %04o", fi.Mode().Perm())
		}
	}
	if err := os.Chmod(file, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(file); err != nil {
		t.Fatalf("a 0400 key was refused: %v", err)
	}
}

func TestReadFileRefusesDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "reset.key")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(dir); err == nil {
		t.Fatal("a directory was read as a key")
	}
}

func TestReadFileMissingIsNotExist(t *testing.T) {
	_, err := ReadFile(filepath.Join(t.TempDir(), "none"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v, want fs.ErrNotExist", err)
	}
}

func TestWriteFileLeavesNoTempFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "id.pem")
	for _, data := range []string{"first", "second, longer"} {
		if err := WriteFile(file, []byte(data)); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != data {
			t.Fatalf("read %q, want %q", got, data)
		}
		assertOnly(t, dir, "id.pem")
	}
	// A failing rename (the target is a non-empty directory) must not
	// leave the temporary file behind either.
	blocked := filepath.Join(dir, "blocked")
	if err := os.MkdirAll(filepath.Join(blocked, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(blocked, []byte("x")); err == nil {
		t.Fatal("writing over a directory succeeded")
	}
	assertOnly(t, dir, "blocked", "id.pem")
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("directory holds %v, want %v", got, names)
	}
}
