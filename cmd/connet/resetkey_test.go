package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2pconnet/connet/internal/config"
)

func TestResetKeyKeptInTheCacheDir(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"CONNET_CACHE_DIR": dir}
	cfg := &config.Config{Client: config.ClientConfig{Token: "t", DirectAddr: "127.0.0.1:19192"}}
	cs, err := cfg.ClientSettings(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	key := resetKey(cs, slog.New(slog.DiscardHandler))
	if key == nil {
		t.Fatal("no key")
	}
	// Directly in $CONNET_CACHE_DIR: no connet/ below it.
	file := filepath.Join(dir, "stateless-reset-127.0.0.1_19192.key")
	b, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(b, key[:]) {
		t.Fatalf("key file %s: %v", file, err)
	}
	if again := resetKey(cs, slog.New(slog.DiscardHandler)); again == nil || *again != *key {
		t.Fatal("the key was not kept across runs")
	}

	// From $XDG_CACHE_HOME, connet's own directory holds it, once.
	xdg := t.TempDir()
	if got, want := resetKeyFile(filepath.Join(xdg, "connet"), ":19192"), filepath.Join(xdg, "connet", "stateless-reset-_19192.key"); got != want {
		t.Fatalf("file %s, want %s", got, want)
	}
}

func TestResetKeyEphemeralWithAWarning(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	// No cache directory at all.
	if key := resetKey(config.ClientSettings{DirectAddr: ":19192"}, log); key != nil {
		t.Fatal("got a kept key without a cache dir")
	}
	// A cache directory that cannot be used (a file is in the way).
	blocked := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocked, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if key := resetKey(config.ClientSettings{DirectAddr: ":19192", ResetKeyCacheDir: blocked}, log); key != nil {
		t.Fatal("got a kept key in an unusable cache dir")
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 || !strings.Contains(logs.String(), "ephemeral") {
		t.Fatalf("want two warnings about an ephemeral key, got:\n%s", logs.String())
	}
}
