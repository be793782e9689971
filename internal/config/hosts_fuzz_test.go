package config

import "testing"

// FuzzNormalizeHost feeds arbitrary text to SplitHost (which reads every
// Host header an http/https/ws/wss source receives) and NormalizeHost
// (allowed-hosts entries). Nothing may panic, and an accepted entry is in
// its final form: normalizing it again changes nothing, and SplitHost reads
// it back.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"localhost:8080", "App.Example.com.", "[::1]:443", "[fe80::1%25eth0]:80", "::1", "*", "a:b:c", "[x", "h:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		_, _, _ = SplitHost(h)
		n, err := NormalizeHost(h)
		if err != nil || n == "*" {
			return
		}
		again, err := NormalizeHost(n)
		if err != nil || again != n {
			t.Fatalf("NormalizeHost(%q) = %q, which normalizes to %q, %v", h, n, again, err)
		}
		if _, _, err := SplitHost(n); err != nil {
			t.Fatalf("SplitHost(%q) of NormalizeHost(%q): %v", n, h, err)
		}
	})
}
