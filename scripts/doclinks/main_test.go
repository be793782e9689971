package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRepositoryLinks: every link between the README and docs/ resolves,
// anchors included.
func TestRepositoryLinks(t *testing.T) {
	broken, err := check("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range broken {
		t.Error(b)
	}
}

// TestCheck: a missing file, a missing anchor and an anchor of the same
// page are found; a good link, a repeated heading's anchor, a URL and a
// link inside a code block are not.
func TestCheck(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", "# Top\n\n## `[client]` keys: all of them\n\n"+
		"[a](docs/a.md#how-it-works) [b](docs/a.md#setup-1) [c](docs/gone.md) [d](docs/a.md#nowhere)\n"+
		"[e](#client-keys-all-of-them) [f](#missing) [g](https://example.com/#x)\n"+
		"```\n[h](docs/also-gone.md)\n```\n")
	write("docs/a.md", "# A\n\n## How it works\n\n## Setup\n\n## Setup\n\n[back](../README.md#top)\n")
	broken, err := check(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"README.md: docs/gone.md: no such file",
		"README.md: docs/a.md#nowhere: no heading with that anchor",
		"README.md: #missing: no heading with that anchor",
	}
	if !slices.Equal(broken, want) {
		t.Errorf("broken links\n got %q\nwant %q", broken, want)
	}
}
