package config_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/p2pconnet/connet/internal/config"
)

func TestLoadMergesFilesInOrder(t *testing.T) {
	dir := t.TempDir()
	base := writeFile(t, dir, "base.toml", `
log-level = "debug"
[client]
token = "base-token"
server-addr = "base.example:1"
relay-encryptions = ["tls", "dhxcp"]
metadata = "base"

[client.destinations.web]
url = "tcp://:3000"
route = "relay"
dial-timeout = "1s"

[client.destinations.api]
url = "tcp://:4000"

[[server.ingress]]
addr = ":1"
[[server.ingress]]
addr = ":2"
`)
	over := writeFile(t, dir, "over.toml", `
[client]
server-addr = "over.example:2"
relay-encryptions = ["none"]
metadata = ""

[client.destinations.web]
dial-timeout = "5s"

[client.sources.web]
url = "tcp://:8000"

[[server.ingress]]
addr = ":3"
`)
	cfg, err := config.Load(base, over)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Client
	checks := []struct {
		key, got, want, origin string
	}{
		{"log-level", cfg.LogLevel, "debug", base},
		{"client.token", c.Token, "base-token", base},
		{"client.server-addr", c.ServerAddr, "over.example:2", over},
		// An empty later value never erases an earlier one.
		{"client.metadata", c.Metadata, "base", base},
		// Tables merge field by field.
		{"client.destinations.web.url", c.Destinations["web"].URL, "tcp://:3000", base},
		{"client.destinations.web.route", c.Destinations["web"].Route, "relay", base},
		{"client.destinations.web.dial-timeout", c.Destinations["web"].DialTimeout, "5s", over},
		{"client.destinations.api.url", c.Destinations["api"].URL, "tcp://:4000", base},
		{"client.sources.web.url", c.Sources["web"].URL, "tcp://:8000", over},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %q, want %q", ck.key, ck.got, ck.want)
		}
		if o := cfg.Origin(ck.key); o != ck.origin {
			t.Errorf("Origin(%s) = %q, want %q", ck.key, o, ck.origin)
		}
	}
	// Arrays, including arrays of tables, are replaced as a whole.
	if !reflect.DeepEqual(c.RelayEncryptions, []string{"none"}) {
		t.Errorf("relay-encryptions = %v", c.RelayEncryptions)
	}
	if len(cfg.Server.Ingress) != 1 || cfg.Server.Ingress[0].Addr != ":3" {
		t.Errorf("server.ingress = %+v", cfg.Server.Ingress)
	}
	if o := cfg.Origin("server.ingress[0].addr"); o != over {
		t.Errorf("ingress origin = %q", o)
	}
}

func TestMergeTableDeclarationIsAnOrigin(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "c.toml", "[client]\ntoken = \"t\"\n[client.sources.empty]\n")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.ClientSettings(nil)
	// The url was never set, but the file that declared the source is named.
	wantErrors(t, err, wantErr{path, "client.sources.empty.url", "required"})
}

func TestMergeAlternativeKeys(t *testing.T) {
	tests := []struct {
		name       string
		base, over config.ClientConfig
		want       config.ClientConfig
	}{
		{
			name: "token replaces earlier token-file",
			base: config.ClientConfig{TokenFile: "f"},
			over: config.ClientConfig{Token: "t"},
			want: config.ClientConfig{Token: "t"},
		},
		{
			name: "token-file replaces earlier token",
			base: config.ClientConfig{Token: "t"},
			over: config.ClientConfig{TokenFile: "f"},
			want: config.ClientConfig{TokenFile: "f"},
		},
		{
			name: "both in one layer are both kept",
			base: config.ClientConfig{Token: "old"},
			over: config.ClientConfig{Token: "t", TokenFile: "f"},
			want: config.ClientConfig{Token: "t", TokenFile: "f"},
		},
		{
			name: "unrelated overlay keeps both",
			base: config.ClientConfig{Token: "t", TokenFile: "f"},
			over: config.ClientConfig{Metadata: "m"},
			want: config.ClientConfig{Token: "t", TokenFile: "f", Metadata: "m"},
		},
		{
			name: "reset key replaces reset key file",
			base: config.ClientConfig{DirectStatelessResetKeyFile: "f"},
			over: config.ClientConfig{DirectStatelessResetKey: "k"},
			want: config.ClientConfig{DirectStatelessResetKey: "k"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg config.Config
			cfg.Merge(&config.Config{Client: tt.base}, "base")
			cfg.Merge(&config.Config{Client: tt.over}, "over")
			if !reflect.DeepEqual(cfg.Client, tt.want) {
				t.Fatalf("got %+v, want %+v", cfg.Client, tt.want)
			}
			if tt.want.TokenFile == "" && cfg.Origin("client.token-file") != "" {
				t.Errorf("origin of a dropped key must be forgotten")
			}
		})
	}

	// The same rule holds for the servers' token lists.
	var cfg config.Config
	cfg.Merge(&config.Config{Server: config.ServerConfig{TokensFile: "f"}, Control: config.ControlConfig{RelaysTokens: []string{"r"}}}, "a")
	cfg.Merge(&config.Config{Server: config.ServerConfig{Tokens: []string{"t"}}, Control: config.ControlConfig{RelaysTokensFile: "rf"}}, "b")
	if cfg.Server.TokensFile != "" || len(cfg.Control.RelaysTokens) != 0 {
		t.Fatalf("alternatives not dropped: %+v %+v", cfg.Server, cfg.Control)
	}
}

func TestFlagTokenOverridesConfigTokenFile(t *testing.T) {
	dir := t.TempDir()
	tokenFile := writeFile(t, dir, "token", "file-token\n")
	cfg := load(t, dir, "client.toml", "[client]\ntoken-file = \""+tokenFile+"\"\n")

	s, err := cfg.ClientSettings(nil)
	if err != nil || s.Token != "file-token" {
		t.Fatalf("before flag: %q, %v", s.Token, err)
	}

	cfg.Merge(&config.Config{Client: config.ClientConfig{Token: "flag-token"}}, "flag --token")
	s, err = cfg.ClientSettings(envMap(map[string]string{"CONNET_TOKEN": "env-token"}))
	if err != nil {
		t.Fatal(err)
	}
	if s.Token != "flag-token" {
		t.Fatalf("token = %q, want flag-token", s.Token)
	}
	if o := cfg.Origin("client.token"); o != "flag --token" {
		t.Errorf("origin = %q", o)
	}
}

func TestFlagOverlayPrecedenceAndErrors(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "client.toml", `
[client]
token = "t"
server-addr = "file.example:19190"
[client.destinations.web]
url = "tcp://:3000"
route = "direct"
`)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// One overlay per flag, as the command line layer is expected to do.
	cfg.Merge(&config.Config{Client: config.ClientConfig{ServerAddr: "flag.example:1"}}, "flag --server-addr")
	cfg.Merge(&config.Config{Client: config.ClientConfig{
		Destinations: map[string]config.DestinationConfig{"web": {URL: "udp://:3000"}},
	}}, "flag --dst-url")
	cfg.Merge(&config.Config{Client: config.ClientConfig{Metadata: ""}}, "flag --metadata")

	if cfg.Client.ServerAddr != "flag.example:1" || cfg.Client.Destinations["web"].Route != "direct" {
		t.Fatalf("overlay not applied field by field: %+v", cfg.Client)
	}
	_, err = cfg.ClientSettings(nil)
	e := singleError(t, err)
	if e.Origin != "flag --dst-url" || e.Key != "client.destinations.web.url" {
		t.Fatalf("error should name the flag: %v", err)
	}
	want := `flag --dst-url: client.destinations.web.url: invalid URL "udp://:3000": unsupported scheme "udp"`
	if got := e.Error(); !strings.HasPrefix(got, want) {
		t.Fatalf("error = %q", got)
	}
}

func TestMergeDoesNotAlias(t *testing.T) {
	overlay := &config.Config{Server: config.ServerConfig{
		Tokens:  []string{"a"},
		Ingress: []config.IngressConfig{{AllowCIDRs: []string{"10.0.0.0/8"}}},
	}}
	var cfg config.Config
	cfg.Merge(overlay, "o")
	overlay.Server.Tokens[0] = "changed"
	overlay.Server.Ingress[0].AllowCIDRs[0] = "changed"
	if cfg.Server.Tokens[0] != "a" || cfg.Server.Ingress[0].AllowCIDRs[0] != "10.0.0.0/8" {
		t.Fatalf("merge aliased the overlay: %+v", cfg.Server)
	}
	cfg.Merge(nil, "nil is ignored")
}

func TestOriginLookup(t *testing.T) {
	var cfg config.Config
	cfg.Merge(&config.Config{Client: config.ClientConfig{
		Sources: map[string]config.SourceConfig{"a.b": {URL: "tcp://:1", RelayEncryptions: []string{"tls"}}},
	}}, "f1")
	tests := map[string]string{
		`client.sources."a.b".url`:                  "f1",
		`client.sources."a.b".relay-encryptions[0]`: "f1",
		`client.sources."a.b".route`:                "f1", // declared table
		`client.sources.a.url`:                      "",
		``:                                          "",
	}
	for key, want := range tests {
		if got := cfg.Origin(key); got != want {
			t.Errorf("Origin(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestMergeKeepsOverlayOrigins(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.toml", "[client]\ntoken = \"a\"\n")
	b := writeFile(t, dir, "b.toml", "[client]\nmetadata = \"b\"\n")
	loaded, err := config.Load(a, b)
	if err != nil {
		t.Fatal(err)
	}
	var cfg config.Config
	cfg.Merge(loaded, "fallback")
	cfg.Merge(&config.Config{Client: config.ClientConfig{ServerName: "x"}}, "flag --server-name")
	for key, want := range map[string]string{
		"client.token":       a,
		"client.metadata":    b,
		"client.server-name": "flag --server-name",
	} {
		if got := cfg.Origin(key); got != want {
			t.Errorf("Origin(%s) = %q, want %q", key, got, want)
		}
	}
}
