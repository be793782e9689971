package config

import (
	"path/filepath"
	"strings"
)

// storeDir picks the directory where a server keeps its state, following the
// spec's Storage section: store-dir, then $CONNET_STATE_DIR, then
// $STATE_DIRECTORY (set by systemd's StateDirectory=; when it lists several
// directories separated by colons, the first is used). An empty result means
// the caller must create a fresh temporary directory (under $TMPDIR) and
// accept that state does not survive a restart. Creating directories is left
// to the caller so that validation has no side effects.
func storeDir(raw string, env func(string) string) string {
	if raw != "" {
		return raw
	}
	if d := env("CONNET_STATE_DIR"); d != "" {
		return d
	}
	if d := env("STATE_DIRECTORY"); d != "" {
		first, _, _ := strings.Cut(d, ":")
		return first
	}
	return ""
}

// cacheDir picks the directory where the client keeps its generated QUIC
// stateless reset key, following the spec's client environment section:
// $CONNET_CACHE_DIR, $CACHE_DIRECTORY (systemd's CacheDirectory=, first entry
// if several), $XDG_CACHE_HOME/connet, then $HOME/.cache/connet. An empty
// result means no cache directory is known and the caller should use an
// ephemeral key.
func cacheDir(env func(string) string) string {
	if d := env("CONNET_CACHE_DIR"); d != "" {
		return d
	}
	if d := env("CACHE_DIRECTORY"); d != "" {
		first, _, _ := strings.Cut(d, ":")
		return first
	}
	if d := env("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "connet")
	}
	if d := env("HOME"); d != "" {
		return filepath.Join(d, ".cache", "connet")
	}
	return ""
}
