package config_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/p2pconnet/connet/internal/config"
)

func TestLoadNoFiles(t *testing.T) {
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Client, config.ClientConfig{}) || cfg.LogLevel != "" {
		t.Fatalf("expected empty config, got %+v", cfg)
	}
}

func TestLoadDecodesEveryKey(t *testing.T) {
	dir := t.TempDir()
	cfg := load(t, dir, "all.toml", `
log-level = "debug"
log-format = "json"

[client]
token-file = "tf"
token = "t"
metadata = "m"
server-addr = "example.com:1"
server-cas-file = "cas"
server-name = "sn"
direct-addr = ":2"
direct-stateless-reset-key = "k"
direct-stateless-reset-key-file = "kf"
status-addr = ":3"
nat-pmp = "dial"
handshake-idle-timeout = "1m"
relay-encryptions = ["tls", "none"]

[client.destinations.d]
route = "relay"
relay-encryptions = ["dhxcp"]
proxy-proto-version = "v2"
dial-timeout = "2s"
url = "tls://h:4"
cas-file = "dcas"
cert-file = "dcert"
key-file = "dkey"

[client.sources.s]
route = "direct"
relay-encryptions = ["tls"]
dial-timeout = "3s"
url = "tcp://:5"
cas-file = "scas"
cert-file = "scert"
key-file = "skey"
lb-policy = "random"
lb-retry = "count"
lb-retry-max = 7

[server]
tokens-file = "stf"
tokens = ["a", "b"]
status-addr = ":6"
store-dir = "sd"

[[server.ingress]]
addr = ":7"
cert-file = "ic"
key-file = "ik"
allow-cidrs = ["10.0.0.0/8"]
deny-cidrs = ["10.1.0.0/16"]

[[server.token-restriction]]
allow-cidrs = ["1.0.0.0/8"]
deny-cidrs = ["2.0.0.0/8"]
name-matches = "^x"
role-matches = "source"

[[server.relay-ingress]]
addr = ":8"
hostports = ["h1", "h2:9"]
allow-cidrs = ["3.0.0.0/8"]
deny-cidrs = ["4.0.0.0/8"]

[control]
clients-tokens-file = "ctf"
clients-tokens = ["c"]
relays-tokens-file = "rtf"
relays-tokens = ["r"]
status-addr = ":10"
store-dir = "csd"

[[control.clients-ingress]]
addr = ":11"
cert-file = "cc"
key-file = "ck"

[[control.clients-token-restriction]]
name-matches = "n"
role-matches = "destination"

[[control.relays-ingress]]
addr = ":12"
cert-file = "rc"
key-file = "rk"

[[control.relays-token-restriction]]
allow-cidrs = ["5.0.0.0/8"]

[relay]
token-file = "rtf"
token = "rt"
metadata = "rm"
control-addr = "ctl:13"
control-cas-file = "ccas"
control-name = "cn"
handshake-timeout = "9s"
status-addr = ":14"
store-dir = "rsd"

[[relay.ingress]]
addr = ":15"
hostports = ["h3"]
`)
	want := config.Config{
		LogLevel:  "debug",
		LogFormat: "json",
		Client: config.ClientConfig{
			TokenFile: "tf", Token: "t", Metadata: "m",
			ServerAddr: "example.com:1", ServerCAsFile: "cas", ServerName: "sn",
			DirectAddr: ":2", DirectStatelessResetKey: "k", DirectStatelessResetKeyFile: "kf",
			StatusAddr: ":3", NatPMP: "dial", HandshakeIdleTimeout: "1m",
			RelayEncryptions: []string{"tls", "none"},
			Destinations: map[string]config.DestinationConfig{"d": {
				Route: "relay", RelayEncryptions: []string{"dhxcp"}, ProxyProtoVersion: "v2",
				DialTimeout: "2s", URL: "tls://h:4", CAsFile: "dcas", CertFile: "dcert", KeyFile: "dkey",
			}},
			Sources: map[string]config.SourceConfig{"s": {
				Route: "direct", RelayEncryptions: []string{"tls"}, DialTimeout: "3s", URL: "tcp://:5",
				CAsFile: "scas", CertFile: "scert", KeyFile: "skey",
				LBPolicy: "random", LBRetry: "count", LBRetryMax: 7,
			}},
		},
		Server: config.ServerConfig{
			TokensFile: "stf", Tokens: []string{"a", "b"}, StatusAddr: ":6", StoreDir: "sd",
			Ingress: []config.IngressConfig{{Addr: ":7", CertFile: "ic", KeyFile: "ik",
				AllowCIDRs: []string{"10.0.0.0/8"}, DenyCIDRs: []string{"10.1.0.0/16"}}},
			TokenRestrictions: []config.TokenRestrictionConfig{{AllowCIDRs: []string{"1.0.0.0/8"},
				DenyCIDRs: []string{"2.0.0.0/8"}, NameMatches: "^x", RoleMatches: "source"}},
			RelayIngress: []config.RelayIngressConfig{{Addr: ":8", Hostports: []string{"h1", "h2:9"},
				AllowCIDRs: []string{"3.0.0.0/8"}, DenyCIDRs: []string{"4.0.0.0/8"}}},
		},
		Control: config.ControlConfig{
			ClientsTokensFile: "ctf", ClientsTokens: []string{"c"},
			RelaysTokensFile: "rtf", RelaysTokens: []string{"r"},
			StatusAddr: ":10", StoreDir: "csd",
			ClientsIngress:           []config.IngressConfig{{Addr: ":11", CertFile: "cc", KeyFile: "ck"}},
			ClientsTokenRestrictions: []config.TokenRestrictionConfig{{NameMatches: "n", RoleMatches: "destination"}},
			RelaysIngress:            []config.IngressConfig{{Addr: ":12", CertFile: "rc", KeyFile: "rk"}},
			RelaysTokenRestrictions:  []config.CIDRRestrictionConfig{{AllowCIDRs: []string{"5.0.0.0/8"}}},
		},
		Relay: config.RelayConfig{
			TokenFile: "rtf", Token: "rt", Metadata: "rm",
			ControlAddr: "ctl:13", ControlCAsFile: "ccas", ControlName: "cn",
			HandshakeTimeout: "9s", StatusAddr: ":14", StoreDir: "rsd",
			Ingress: []config.RelayIngressConfig{{Addr: ":15", Hostports: []string{"h3"}}},
		},
	}
	// Compare the exported model only; origins are checked elsewhere.
	got := *cfg
	if !reflect.DeepEqual(stripOrigins(got), stripOrigins(want)) {
		t.Fatalf("decoded config mismatch\n got: %+v\nwant: %+v", got, want)
	}
}

// stripOrigins copies the exported fields, dropping the origin bookkeeping.
func stripOrigins(c config.Config) config.Config {
	return config.Config{LogLevel: c.LogLevel, LogFormat: c.LogFormat,
		Client: c.Client, Server: c.Server, Control: c.Control, Relay: c.Relay}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []wantErr
		line    int // expected line of the first error, if > 0
	}{
		{
			name:    "syntax error has line",
			content: "[client]\ntoken = \"a\"\nserver-addr = \n",
			want:    []wantErr{{"-", "", "invalid TOML"}},
			line:    3,
		},
		{
			name:    "bare key with a space",
			content: "log-level = \"info\"\nlog level = \"x\"\n[client]\n",
			want:    []wantErr{{"-", "", "invalid TOML"}},
			line:    2,
		},
		{
			name:    "duplicate key",
			content: "[client]\ntoken = \"a\"\ntoken = \"b\"\n",
			want:    []wantErr{{"-", "", "already been defined"}},
			line:    3,
		},
		{
			name:    "unknown root key",
			content: "log-levle = \"info\"\n",
			want:    []wantErr{{"-", "log-levle", "unknown key"}},
		},
		{
			name:    "unknown nested key",
			content: "[client.destinations.web]\nurl = \"tcp://:1\"\ndial-timeot = \"1s\"\n",
			want:    []wantErr{{"-", "client.destinations.web.dial-timeot", "unknown key"}},
		},
		{
			name:    "unknown key in array of tables has index",
			content: "[[server.ingress]]\naddr = \":1\"\n[[server.ingress]]\ncert = \"x\"\n",
			want:    []wantErr{{"-", "server.ingress[1].cert", "unknown key"}},
		},
		{
			name:    "keys are case sensitive, with a hint",
			content: "[client]\nToken = \"x\"\n",
			want:    []wantErr{{"-", "client.Token", `unknown key (did you mean "token"?)`}},
		},
		{
			name:    "unknown table",
			content: "[clients]\ntoken = \"x\"\n",
			want:    []wantErr{{"-", "clients", "unknown key"}},
		},
		{
			name:    "lb keys belong to sources only",
			content: "[client.destinations.web]\nurl = \"tcp://:1\"\nlb-policy = \"random\"\n",
			want:    []wantErr{{"-", "client.destinations.web.lb-policy", "unknown key"}},
		},
		{
			name:    "relay token restrictions take no name-matches",
			content: "[[control.relays-token-restriction]]\nname-matches = \"x\"\n",
			want:    []wantErr{{"-", "control.relays-token-restriction[0].name-matches", "unknown key"}},
		},
		{
			name:    "string expected",
			content: "[client]\ntoken = 42\n",
			want:    []wantErr{{"-", "client.token", "expected string, got integer"}},
		},
		{
			name:    "integer expected",
			content: "[client.sources.s]\nlb-retry-max = \"5\"\n",
			want:    []wantErr{{"-", "client.sources.s.lb-retry-max", "expected integer, got string"}},
		},
		{
			name:    "float is not an integer",
			content: "[client.sources.s]\nlb-retry-max = 5.0\n",
			want:    []wantErr{{"-", "client.sources.s.lb-retry-max", "expected integer, got float"}},
		},
		{
			name:    "array expected",
			content: "[client]\nrelay-encryptions = \"tls\"\n",
			want:    []wantErr{{"-", "client.relay-encryptions", "expected array, got string"}},
		},
		{
			name:    "array element type",
			content: "[server]\ntokens = [\"a\", 2, true]\n",
			want: []wantErr{
				{"-", "server.tokens[1]", "expected string, got integer"},
				{"-", "server.tokens[2]", "expected string, got boolean"},
			},
		},
		{
			name:    "table expected",
			content: "[client]\ndestinations = \"web\"\n",
			want:    []wantErr{{"-", "client.destinations", "expected table, got string"}},
		},
		{
			name:    "endpoint must be a table",
			content: "[client.destinations]\nweb = \"tcp://:1\"\n",
			want:    []wantErr{{"-", "client.destinations.web", "expected table, got string"}},
		},
		{
			name:    "array of tables expected",
			content: "[server]\ningress = \":19190\"\n",
			want:    []wantErr{{"-", "server.ingress", "expected array, got string"}},
		},
		{
			name:    "array of tables element",
			content: "[server]\ningress = [\":19190\"]\n",
			want:    []wantErr{{"-", "server.ingress[0]", "expected table, got string"}},
		},
		{
			name:    "datetime",
			content: "[client]\ntoken = 1979-05-27\n",
			want:    []wantErr{{"-", "client.token", "expected string, got datetime"}},
		},
		{
			name:    "quoted endpoint names are quoted in keys",
			content: "[client.destinations.\"my.svc\"]\nurl = 1\n",
			want:    []wantErr{{"-", `client.destinations."my.svc".url`, "expected string, got integer"}},
		},
		{
			name:    "all problems are reported",
			content: "log-level = 1\n[client]\nbogus = 1\nmetadata = []\n",
			want: []wantErr{
				{"-", "log-level", "expected string"},
				{"-", "client.bogus", "unknown key"},
				{"-", "client.metadata", "expected string, got array"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "bad.toml", tt.content)
			cfg, err := config.Load(path)
			// A syntax error leaves nothing to validate; wrong keys are
			// dropped and the rest of the file is still loaded.
			if syntax := tt.want[0].Key == ""; syntax != (cfg == nil) {
				t.Errorf("config = %v, want nil only after a syntax error", cfg)
			}
			for i := range tt.want {
				if tt.want[i].Origin == "-" {
					tt.want[i].Origin = path
				}
			}
			wantErrors(t, err, tt.want...)
			if tt.line > 0 {
				if got := config.Errors(err)[0].Line; got != tt.line {
					t.Errorf("line = %d, want %d (%v)", got, tt.line, err)
				}
			}
		})
	}
}

func TestLoadErrorMessageFormat(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "dst.toml", "[client]\ntoken = \"x\"\n[client.destinations.web]\nurl = \"tcp://:1\"\ndial-timeout = \"2x\"\n")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.ClientSettings(nil)
	want := path + `: client.destinations.web.dial-timeout: invalid duration "2x": time: `
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error = %v\nwant prefix %q", err, want)
	}

	// Syntax errors carry the line and the column after the file name.
	bad := writeFile(t, dir, "bad.toml", "[client]\ntoken = \"unterminated\n")
	_, err = config.Load(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+":2:22: invalid TOML: ") {
		t.Fatalf("syntax error = %v", err)
	}
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		t.Errorf("the toml.ParseError should stay reachable through errors.As")
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	_, err := config.Load(path)
	e := singleError(t, err)
	if e.Origin != path || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("unexpected error %#v", e)
	}
}

func TestLoadReportsAllFiles(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.toml", "bogus = 1\n")
	b := writeFile(t, dir, "b.toml", "[client]\ntoken = 1\n")
	_, err := config.Load(a, b)
	wantErrors(t, err,
		wantErr{a, "bogus", "unknown key"},
		wantErr{b, "client.token", "expected string"},
	)
}

func TestParseRecordsOrigin(t *testing.T) {
	cfg, err := config.Parse([]byte("[client]\ntoken = \"x\"\n[[server.ingress]]\naddr = \":1\"\n"), "inline")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"client.token", "server.ingress", "server.ingress[0].addr", "server.ingress[0]"} {
		if got := cfg.Origin(key); got != "inline" {
			t.Errorf("Origin(%q) = %q, want inline", key, got)
		}
	}
	if got := cfg.Origin("client.metadata"); got != "" {
		t.Errorf("unset key has origin %q", got)
	}
}

func TestLoadRefusesHugeFiles(t *testing.T) {
	path := writeFile(t, t.TempDir(), "huge.toml", "# "+strings.Repeat("x", 8<<20)+"\n")
	_, err := config.Load(path)
	e := singleError(t, err)
	if e.Origin != path || !strings.Contains(e.Error(), "larger than") {
		t.Fatalf("unexpected error %v", err)
	}
}
