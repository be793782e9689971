package config_test

import (
	"os"
	"path/filepath"
	"testing"
)

// TestQuickstartOnDisk runs the spec's Quickstart exactly as a user would:
// the three files unchanged, next to a cert.pem/key.pem, from their
// directory, through the public API and the real file system.
func TestQuickstartOnDisk(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"quickstart-server.toml", "quickstart-destination.toml", "quickstart-source.toml"} {
		writeFile(t, dir, name, readFileT(t, filepath.Join("testdata", "spec", name)))
	}
	writeFile(t, dir, "cert.pem", readFileT(t, filepath.Join("testdata", "tls", "cert.pem")))
	writeFile(t, dir, "key.pem", readFileT(t, filepath.Join("testdata", "tls", "key.pem")))
	t.Chdir(dir)

	// No store-dir anywhere: the caller is told to use a temporary one.
	env := envMap(map[string]string{"TMPDIR": os.TempDir()})

	srvCfg := load(t, dir, "quickstart-server.toml", readFileT(t, "quickstart-server.toml"))
	srv, err := srvCfg.ServerSettings(env)
	if err != nil {
		t.Fatal(err)
	}
	if len(srv.Tokens) != 2 || srv.Ingress[0].Addr != ":19190" || srv.RelayIngress[0].Addr != ":19191" || srv.StoreDir != "" {
		t.Errorf("server: %+v", srv)
	}

	for _, name := range []string{"quickstart-destination.toml", "quickstart-source.toml"} {
		cfg := load(t, dir, name, readFileT(t, name))
		cl, err := cfg.ClientSettings(env)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cl.ServerCAs == nil || cl.DirectAddr != ":19192" || len(cl.Destinations)+len(cl.Sources) != 1 {
			t.Errorf("%s: %+v", name, cl)
		}
	}
}
