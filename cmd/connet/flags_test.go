package main

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/e2ee"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/spf13/cobra"
)

// loadWith runs the command build makes with args, returning the config its
// files and flags give instead of running anything.
func loadWith(t *testing.T, build func(func(context.Context, *config.Config) error) *cobra.Command, args ...string) (*config.Config, error) {
	t.Helper()
	var got *config.Config
	cmd := build(func(_ context.Context, cfg *config.Config) error { got = cfg; return nil })
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	return got, err
}

// certFiles writes a self-signed certificate for localhost into a temporary
// directory.
func certFiles(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	cert, err := testcert.New("localhost")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err = cert.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestServerFlags(t *testing.T) {
	certFile, keyFile := certFiles(t)
	cfg, err := loadWith(t, serverCommand, "--tokens", "a", "--cert-file", certFile, "--key-file", keyFile,
		"--addr", "127.0.0.1:7000", "--allow-cidrs", "10.0.0.0/8", "--deny-cidrs", "10.1.0.0/16",
		"--relay-addr", ":7001", "--relay-hostport", "relay.example.com",
		"--relay-allow-cidrs", "192.0.2.0/24", "--relay-deny-cidrs", "192.0.2.7/32")
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.ServerSettings(nil)
	if err != nil {
		t.Fatal(err)
	}
	in := s.Ingress[0]
	if in.Addr != "127.0.0.1:7000" || len(in.Restriction.Allow) != 1 || len(in.Restriction.Deny) != 1 {
		t.Errorf("client ingress %+v", in)
	}
	r := s.RelayIngress[0]
	if r.Addr != ":7001" || !slices.Equal(r.Hostports, []string{"relay.example.com:7001"}) ||
		r.Restriction.Allow[0].String() != "192.0.2.0/24" || r.Restriction.Deny[0].String() != "192.0.2.7/32" {
		t.Errorf("relay ingress %+v", r)
	}
}

func TestServerBadCIDRFlagNamesTheFlag(t *testing.T) {
	certFile, keyFile := certFiles(t)
	cfg, err := loadWith(t, serverCommand, "--tokens", "a", "--cert-file", certFile, "--key-file", keyFile, "--deny-cidrs", "10.0.0.0/33")
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.ServerSettings(nil)
	if errs := config.Errors(err); len(errs) != 1 || errs[0].Origin != "flag --deny-cidrs" {
		t.Fatalf("got %v, want one error attributed to flag --deny-cidrs", err)
	}
}

func TestControlFlags(t *testing.T) {
	certFile, keyFile := certFiles(t)
	cfg, err := loadWith(t, controlCommand, "--clients-tokens", "c1,c2", "--relays-tokens", "r1",
		"--clients-addr", "127.0.0.1:7100", "--clients-cert-file", certFile, "--clients-key-file", keyFile,
		"--clients-deny-cidrs", "192.0.2.0/24",
		"--relays-addr", "127.0.0.1:7101", "--relays-cert-file", certFile, "--relays-key-file", keyFile,
		"--relays-allow-cidrs", "10.0.0.0/8",
		"--status-addr", "127.0.0.1:7102", "--store-dir", "/var/lib/connet-control")
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.ControlSettings(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.ClientsTokens, []string{"c1", "c2"}) || !slices.Equal(s.RelaysTokens, []string{"r1"}) {
		t.Errorf("tokens %q %q", s.ClientsTokens, s.RelaysTokens)
	}
	if c := s.ClientsIngress[0]; c.Addr != "127.0.0.1:7100" || len(c.Restriction.Deny) != 1 || c.Certificate.Certificate == nil {
		t.Errorf("clients ingress %+v", c)
	}
	if r := s.RelaysIngress[0]; r.Addr != "127.0.0.1:7101" || len(r.Restriction.Allow) != 1 || r.Certificate.Certificate == nil {
		t.Errorf("relays ingress %+v", r)
	}
	if s.StatusAddr != "127.0.0.1:7102" || s.StoreDir != "/var/lib/connet-control" {
		t.Errorf("status %q, store %q", s.StatusAddr, s.StoreDir)
	}
}

func TestControlFlagsEditTheFileIngress(t *testing.T) {
	certFile, keyFile := certFiles(t)
	file := writeFile(t, t.TempDir(), "control.toml", `
[control]
clients-tokens = ["c"]
[[control.clients-ingress]]
addr = "127.0.0.1:7200"
cert-file = "`+certFile+`"
key-file = "`+keyFile+`"
[[control.clients-ingress]]
addr = "127.0.0.1:7201"
cert-file = "`+certFile+`"
key-file = "`+keyFile+`"
`)
	cfg, err := loadWith(t, controlCommand, "--config", file, "--clients-addr", "127.0.0.1:7300")
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.ControlSettings(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.ClientsIngress) != 2 || s.ClientsIngress[0].Addr != "127.0.0.1:7300" || s.ClientsIngress[1].Addr != "127.0.0.1:7201" {
		t.Fatalf("ingresses %+v: the flag must edit the first and keep the second", s.ClientsIngress)
	}
}

func TestRelayFlags(t *testing.T) {
	certFile, _ := certFiles(t)
	cfg, err := loadWith(t, relayCommand, "--token", "r", "--metadata", "m",
		"--control-addr", "127.0.0.1:7400", "--control-cas-file", certFile, "--control-name", "localhost",
		"--handshake-timeout", "20s", "--status-addr", "127.0.0.1:7401", "--store-dir", "/var/lib/connet-relay",
		"--addr", ":7402", "--hostports", "relay.example.com", "--allow-cidrs", "10.0.0.0/8", "--deny-cidrs", "10.9.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.RelaySettings(nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Token != "r" || s.Metadata != "m" || s.ControlAddr != "127.0.0.1:7400" || s.ControlName != "localhost" || s.ControlCAs == nil {
		t.Errorf("control settings %+v", s)
	}
	if s.HandshakeTimeout != 20*time.Second || s.StatusAddr != "127.0.0.1:7401" || s.StoreDir != "/var/lib/connet-relay" {
		t.Errorf("settings %+v", s)
	}
	in := s.Ingress[0]
	if in.Addr != ":7402" || !slices.Equal(in.Hostports, []string{"relay.example.com:7402"}) || len(in.Restriction.Allow) != 1 || len(in.Restriction.Deny) != 1 {
		t.Errorf("ingress %+v", in)
	}
}

func TestAliasesOfTheOriginalSpellings(t *testing.T) {
	// --handshake-idle-timeout is the original's name of the relay's
	// --handshake-timeout.
	cfg, err := loadWith(t, relayCommand, "--token", "r", "--handshake-idle-timeout", "30s")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := cfg.RelaySettings(nil); err != nil || s.HandshakeTimeout != 30*time.Second {
		t.Fatalf("handshake timeout %v, err %v", s.HandshakeTimeout, err)
	}

	s, err := loadClient(t, "--token", "t",
		"--dst-name", "d", "--dst-url", "tcp://localhost:3000", "--dst-relay-encryption", "tls",
		"--src-name", "s", "--src-url", "tcp://:9000", "--src-relay-encryption", "dhxcp")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Destinations["d"].RelayEncryptions; !slices.Equal(got, []e2ee.Encryption{e2ee.TLS}) {
		t.Errorf("destination encryptions %q", got)
	}
	if got := s.Sources["s"].RelayEncryptions; !slices.Equal(got, []e2ee.Encryption{e2ee.DHXCP}) {
		t.Errorf("source encryptions %q", got)
	}

	// Both spellings at once are one flag given twice: the values add up.
	s, err = loadClient(t, "--token", "t", "--src-name", "s", "--src-url", "tcp://:9000",
		"--src-relay-encryptions", "tls", "--src-relay-encryption", "dhxcp")
	if err != nil {
		t.Fatal(err)
	}
	want := []e2ee.Encryption{e2ee.TLS, e2ee.DHXCP}
	if got := s.Sources["s"].RelayEncryptions; !slices.Equal(got, want) {
		t.Errorf("source encryptions %q, want %q", got, want)
	}
}

func TestAliasesAreHiddenFromHelp(t *testing.T) {
	for _, tt := range []struct {
		args          []string
		name, aliased string
	}{
		{[]string{"--help"}, "--src-relay-encryptions", "--src-relay-encryption "},
		{[]string{"--help"}, "--dst-relay-encryptions", "--dst-relay-encryption "},
		{[]string{"server", "--help"}, "--relay-hostports", "--relay-hostport "},
		{[]string{"relay", "--help"}, "--handshake-timeout", "--handshake-idle-timeout"},
	} {
		out, err := run(t, tt.args...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, tt.name) || strings.Contains(out, tt.aliased) {
			t.Errorf("connet %v: help must list %s and not %s:\n%s", tt.args, tt.name, tt.aliased, out)
		}
	}
}

func TestEndpointNameNeedsAURL(t *testing.T) {
	for _, prefix := range []string{"src", "dst"} {
		_, err := loadClient(t, "--token", "t", "--"+prefix+"-name", "web")
		if err == nil || !strings.Contains(err.Error(), "--"+prefix+"-name") || !strings.Contains(err.Error(), "--"+prefix+"-url") {
			t.Errorf("--%s-name alone: got %v, want an error naming --%s-name and --%s-url", prefix, err, prefix, prefix)
		}
	}
	// The flags may edit an endpoint a config file declares with its URL.
	file := writeFile(t, t.TempDir(), "client.toml", "[client]\ntoken = \"t\"\n[client.destinations.web]\nurl = \"tcp://localhost:3000\"\n")
	s, err := loadClient(t, "--config", file, "--dst-name", "web", "--dst-route", "relay")
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Destinations["web"]; d.Route != netpath.RouteRelay || d.URL.String() != "tcp://localhost:3000" {
		t.Fatalf("destination %+v", d)
	}
}

func TestMistypedSubcommandSuggests(t *testing.T) {
	for typed, want := range map[string]string{"sevrer": "server", "chek": "check", "relya": "relay", "contrl": "control"} {
		_, err := run(t, typed)
		if err == nil || !strings.Contains(err.Error(), "did you mean "+want+"?") {
			t.Errorf("connet %s: got %v, want a suggestion of %s", typed, err, want)
		}
	}
	_, err := run(t, "frobnicate")
	if err == nil || strings.Contains(err.Error(), "did you mean") || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Errorf("connet frobnicate: got %v, want unknown command without a suggestion", err)
	}
}

// TestBirthdayPunchFlag: --birthday-punch overrides the file's key, and a
// bad value is an error naming the flag.
func TestBirthdayPunchFlag(t *testing.T) {
	file := writeFile(t, t.TempDir(), "client.toml", "[client]\ntoken = \"t\"\nbirthday-punch = \"disabled\"\n")
	s, err := loadClient(t, "--config", file)
	if err != nil || s.BirthdayPunch != config.BirthdayPunchDisabled {
		t.Fatalf("from the file: %q, %v", s.BirthdayPunch, err)
	}
	if s, err = loadClient(t, "--config", file, "--birthday-punch", "enabled"); err != nil || s.BirthdayPunch != config.BirthdayPunchEnabled {
		t.Fatalf("with the flag: %q, %v", s.BirthdayPunch, err)
	}
	_, err = loadClient(t, "--token", "t", "--birthday-punch", "no")
	if errs := config.Errors(err); len(errs) != 1 || errs[0].Origin != "flag --birthday-punch" || errs[0].Key != "client.birthday-punch" {
		t.Fatalf("got %v, want one error about client.birthday-punch attributed to flag --birthday-punch", err)
	}
}
