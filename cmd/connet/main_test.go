package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/spf13/pflag"
)

// run executes the command line in process and returns its output and error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckQuickstartConfigs(t *testing.T) {
	dir := t.TempDir()
	cert, err := testcert.New("localhost")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if _, _, err := cert.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	server := writeFile(t, dir, "server.toml", `
[server]
tokens = ["client-d-token", "client-s-token"]

[[server.ingress]]
cert-file = "cert.pem"
key-file = "key.pem"
`)
	dst := writeFile(t, dir, "destination.toml", `
[client]
token = "client-d-token"
server-addr = "192.0.2.1:19190"
server-cas-file = "cert.pem"
birthday-punch = "disabled"

[client.destinations.serviceA]
url = "tcp://:3000"
`)
	out, err := run(t, "check", server, dst)
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	for _, want := range []string{
		"ok: client, server\n",
		"client (connet): 1 destination, 0 sources; connects to the control server at 192.0.2.1:19190",
		`destination "serviceA": exposes tcp://:3000 (route any)`,
		"port mapping (nat-pmp system): NAT-PMP, then PCP, then UPnP, at the default route's gateway",
		"birthday punch: off",
		"each peer may have 1024 new connections waiting for an answer (max-pending-streams)",
		"if QUIC does not connect within 1 s (UDP blocked or refused): falls back to tcp then wss at 192.0.2.1:19190, trying QUIC again every 30s",
		"listens for clients on :19190 (UDP) and :19190 (TCP: TLS and WebSocket)",
		"relays clients on :19191 (UDP) and :19191 (TCP: TLS and WebSocket), advertised as localhost:19191",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckNamesFileKeyAndReason(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "source.toml", `
[client]
token = "t"
[client.sources.web]
url = "tcp://:8000"
dial-timeout = "5x"
`)
	_, err := run(t, "check", bad)
	errs := config.Errors(err)
	if len(errs) != 1 {
		t.Fatalf("got %v, want one config error", err)
	}
	e := errs[0]
	if e.Origin != bad || e.Key != "client.sources.web.dial-timeout" || !strings.Contains(e.Reason, "5x") {
		t.Fatalf("error %+v does not name the file, the key and the bad value", e)
	}
}

// loadClient runs the root command with args, loading and validating the
// client config instead of connecting.
func loadClient(t *testing.T, args ...string) (config.ClientSettings, error) {
	t.Helper()
	var settings config.ClientSettings
	cmd := newClientCommand(func(_ context.Context, fs *pflag.FlagSet, f *clientFlags) error {
		cfg, err := f.load(fs)
		if err != nil {
			return err
		}
		settings, err = cfg.ClientSettings(func(string) string { return "" })
		return err
	})
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	err := cmd.Execute()
	return settings, err
}

func TestFlagsOverrideConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "client.toml", `
[client]
token-file = "/nonexistent/token"
server-addr = "192.0.2.1:19190"
[client.sources.web]
url = "tcp://:8000"
`)
	// --token beats token-file from the file (which would fail to read),
	// and the source flags edit the source the file declares.
	s, err := loadClient(t, "--config", cfg, "--token", "from-flag", "--src-name", "web", "--src-url", "tcp://:9000")
	if err != nil {
		t.Fatal(err)
	}
	if s.Token != "from-flag" || s.ServerAddr != "192.0.2.1:19190" {
		t.Fatalf("token %q, server %q", s.Token, s.ServerAddr)
	}
	if got := s.Sources["web"].URL.String(); got != "tcp://:9000" {
		t.Fatalf("source url %q, want the flag's", got)
	}
}

func TestSourceAllowedOriginsFlag(t *testing.T) {
	s, err := loadClient(t, "--token", "t", "--src-name", "web", "--src-url", "ws://:9000",
		"--src-allowed-origins", "https://App.example.com,http://localhost:8080")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://app.example.com", "http://localhost:8080"}
	if got := s.Sources["web"].AllowedOrigins; !slices.Equal(got, want) {
		t.Fatalf("allowed origins %q, want %q", got, want)
	}
	_, err = loadClient(t, "--token", "t", "--src-name", "web", "--src-url", "tcp://:9000", "--src-allowed-origins", "*")
	if errs := config.Errors(err); len(errs) != 1 || errs[0].Origin != "flag --src-allowed-origins" {
		t.Fatalf("got %v, want one error attributed to flag --src-allowed-origins", err)
	}
}

func TestSourceAllowedHostsAndServeDotfilesFlags(t *testing.T) {
	s, err := loadClient(t, "--token", "t", "--src-name", "web", "--src-url", "http://:9000",
		"--src-allowed-hosts", "App.example.com,api.example.com:8443",
		"--dst-name", "site", "--dst-url", "file://"+t.TempDir(), "--dst-serve-dotfiles")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"app.example.com", "api.example.com:8443"}
	if got := s.Sources["web"].AllowedHosts; !slices.Equal(got, want) {
		t.Fatalf("allowed hosts %q, want %q", got, want)
	}
	if !s.Destinations["site"].ServeDotfiles {
		t.Fatal("--dst-serve-dotfiles not applied")
	}
	_, err = loadClient(t, "--token", "t", "--dst-name", "web", "--dst-url", "tcp://:9000", "--dst-serve-dotfiles")
	if errs := config.Errors(err); len(errs) != 1 || errs[0].Origin != "flag --dst-serve-dotfiles" {
		t.Fatalf("got %v, want one error attributed to flag --dst-serve-dotfiles", err)
	}
}

func TestBadFlagValueNamesTheFlag(t *testing.T) {
	_, err := loadClient(t, "--token", "t", "--dst-name", "web", "--dst-url", "tcp://localhost:3000", "--dst-dial-timeout", "soon")
	errs := config.Errors(err)
	if len(errs) != 1 || errs[0].Origin != "flag --dst-dial-timeout" {
		t.Fatalf("got %v, want one error attributed to flag --dst-dial-timeout", err)
	}
}

func TestEndpointFlagsNeedAName(t *testing.T) {
	if _, err := loadClient(t, "--token", "t", "--src-url", "tcp://:9000"); err == nil || !strings.Contains(err.Error(), "--src-name") {
		t.Fatalf("got %v, want an error asking for --src-name", err)
	}
}

func TestVersion(t *testing.T) {
	out, err := run(t, "version")
	if err != nil || strings.TrimSpace(out) == "" {
		t.Fatalf("version: %q, %v", out, err)
	}
}

func TestCheckDescribesControlAndRelay(t *testing.T) {
	dir := t.TempDir()
	cert, err := testcert.New("localhost")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := cert.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, dir, "split.toml", `
[control]
clients-tokens = ["c"]
relays-tokens = ["r"]
store-dir = "/var/lib/connet-control"
[[control.clients-ingress]]
cert-file = "`+certFile+`"
key-file = "`+keyFile+`"
allow-cidrs = ["10.0.0.0/8"]
[[control.relays-ingress]]
cert-file = "`+certFile+`"
key-file = "`+keyFile+`"

[relay]
token = "r"
control-addr = "ctl.example.com:19189"
control-cas-file = "`+certFile+`"
status-addr = "127.0.0.1:19181"
[[relay.ingress]]
hostports = ["relay.example.com"]
`)
	out, err := run(t, "check", file)
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	for _, want := range []string{
		"ok: control, relay\n",
		"control server (connet control): 1 client token, 1 relay token",
		"listens for clients on :19190 (UDP) and :19190 (TCP: TLS and WebSocket), allows 10.0.0.0/8",
		"listens for relays on :19189 (UDP)",
		"state in /var/lib/connet-control",
		"joins the control server at ctl.example.com:19189 (certificate name ctl.example.com, trusting the CAs of control-cas-file)",
		"relays clients on :19191 (UDP) and :19191 (TCP: TLS and WebSocket), advertised as relay.example.com:19191",
		"status at http://127.0.0.1:19181",
		"state in a temporary directory",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, tt := range []struct {
		hostports []string
		want      bool
	}{
		{[]string{"localhost:19191"}, true},
		{[]string{"127.0.0.1:19191", "[::1]:19191"}, true},
		{[]string{"localhost:19191", "relay.example.com:19191"}, false},
		{[]string{"192.0.2.1:19191"}, false},
		{nil, false},
	} {
		if got := loopbackOnly(tt.hostports); got != tt.want {
			t.Errorf("loopbackOnly(%q) = %v, want %v", tt.hostports, got, tt.want)
		}
	}
}
