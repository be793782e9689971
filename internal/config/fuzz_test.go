package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load as a config file and then runs
// every validation on whatever loaded. Nothing may panic. Referenced files
// come from a fake file system (where no directory exists) so the fuzzer
// cannot make the test read devices or block on pipes.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{
		"quickstart-server.toml", "quickstart-destination.toml", "quickstart-source.toml",
		"full-client.toml", "full-server.toml", "full-control.toml", "full-relay.toml",
	} {
		data, err := os.ReadFile(filepath.Join("testdata", "spec", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// Wrong keys are dropped and the rest validated; syntax errors carry
	// an excerpt of their line.
	f.Add([]byte("[client]\nbogus = 1\ntoken = 2\nrelay-encryptions = [\"tls\", 3]\n[[server.ingress]]\ncert = 1\n[client.destinations.x]\nurl = \"file:./x\"\ncas-file = \"a.pem\"\n"))
	f.Add([]byte("[client]\n\ttoken = \"a\x1b[2J\"\n"))
	cert, key := testTLSData(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "fuzz.toml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err != nil && len(Errors(err)) == 0 {
			t.Fatalf("error without *Error: %v", err)
		}
		for _, e := range Errors(err) {
			if x := e.Excerpt(); strings.Count(x, "\n") > 1 {
				t.Fatalf("excerpt of more than two lines: %q", x)
			}
		}
		if cfg == nil {
			return
		}
		readFile := func(p string) ([]byte, error) {
			switch {
			case strings.Contains(p, "key"):
				return []byte(key), nil
			case strings.HasSuffix(p, ".pem"):
				return []byte(cert), nil
			}
			return []byte(p), nil
		}
		env := func(k string) string { return "env-" + k }
		for _, run := range []func(*resolver){
			func(r *resolver) { r.client() },
			func(r *resolver) { r.server() },
			func(r *resolver) { r.control() },
			func(r *resolver) { r.relay() },
		} {
			r := newResolver(cfg, env)
			r.readFile = readFile
			r.stat = func(p string) (fs.FileInfo, error) {
				return nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
			}
			run(r)
			for _, e := range Errors(r.err()) {
				if e.Key == "" || e.Reason == "" {
					t.Fatalf("validation error without key or reason: %#v", e)
				}
			}
		}
		_, _ = cfg.LogSettings()

		// Merging a config onto itself must be stable.
		var twice Config
		twice.Merge(cfg, "a")
		twice.Merge(cfg, "b")
		_ = twice.Origin("client.destinations.x.url")
	})
}

func testTLSData(tb testing.TB) (cert, key string) {
	c, err := os.ReadFile("testdata/tls/cert.pem")
	if err != nil {
		tb.Fatal(err)
	}
	k, err := os.ReadFile("testdata/tls/key.pem")
	if err != nil {
		tb.Fatal(err)
	}
	return string(c), string(k)
}
