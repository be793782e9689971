package identity

import (
	"path/filepath"
	"testing"
)

func TestLoadOrCreateKeepsIdentity(t *testing.T) {
	file := filepath.Join(t.TempDir(), "relay.pem")
	first, err := LoadOrCreate(file, "relay")
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreate(file, "relay")
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != again.ID {
		t.Fatalf("identity changed across loads: %s then %s", first.ID, again.ID)
	}
	if IDOf(again.DER()) != again.ID {
		t.Fatal("loaded ID does not match the loaded certificate")
	}
}

func TestIDRoundTrip(t *testing.T) {
	id, err := Generate("x")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseID(id.ID[:])
	if err != nil || got != id.ID {
		t.Fatalf("ParseID: %v, %v", got, err)
	}
	if _, err := ParseID([]byte{1, 2}); err == nil {
		t.Fatal("short id accepted")
	}
}
