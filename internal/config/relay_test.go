package config_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/config"
)

func TestRelaySettings(t *testing.T) {
	dir := serverFixture(t)
	writeFile(t, dir, "relay-token", "relay-secret\n")
	tests := []struct {
		name  string
		toml  string
		env   map[string]string
		check func(*testing.T, config.RelaySettings)
		errs  []wantErr
	}{
		{
			name: "defaults",
			toml: "[relay]\ntoken = \"rt\"\n",
			check: func(t *testing.T, s config.RelaySettings) {
				want := config.RelaySettings{
					Token: "rt", ControlAddr: "localhost:19189", ControlName: "localhost",
					HandshakeTimeout: 5 * time.Second,
					Ingress:          []config.RelayIngress{{Addr: ":19191", Hostports: []string{"localhost:19191"}, Transports: both}},
				}
				if !reflect.DeepEqual(s, want) {
					t.Errorf("got %+v", s)
				}
			},
		},
		{
			name: "everything set",
			toml: `
[relay]
token-file = "relay-token"
token = "ignored"
metadata = "home"
control-addr = "10.0.0.1:19189"
control-cas-file = "srv.cert.pem"
control-name = "ctl.example.com"
handshake-timeout = "1m"
status-addr = "127.0.0.1:19181"
store-dir = "/var/lib/relay"
[[relay.ingress]]
addr = ":5000"
hostports = ["relay.example.com", "relay2.example.com:6000"]
allow-cidrs = ["10.0.0.0/8"]
`,
			check: func(t *testing.T, s config.RelaySettings) {
				if s.Token != "relay-secret" || s.Metadata != "home" || s.ControlAddr != "10.0.0.1:19189" || s.ControlName != "ctl.example.com" {
					t.Errorf("got %+v", s)
				}
				if s.ControlCAs == nil || s.HandshakeTimeout != time.Minute || s.StatusAddr != "127.0.0.1:19181" || s.StoreDir != "/var/lib/relay" {
					t.Errorf("got %+v", s)
				}
				if !reflect.DeepEqual(s.Ingress[0].Hostports, []string{"relay.example.com:5000", "relay2.example.com:6000"}) || len(s.Ingress[0].Restriction.Allow) != 1 {
					t.Errorf("ingress %+v", s.Ingress)
				}
			},
		},
		{
			name: "store dir from env",
			toml: "[relay]\ntoken = \"rt\"\n",
			env:  map[string]string{"CONNET_STATE_DIR": "/env"},
			check: func(t *testing.T, s config.RelaySettings) {
				if s.StoreDir != "/env" {
					t.Errorf("store %q", s.StoreDir)
				}
			},
		},
		{
			name: "token required, env is not used",
			toml: "[relay]\n",
			env:  map[string]string{"CONNET_TOKEN": "client-token"},
			errs: []wantErr{{"", "relay.token", "required"}},
		},
		{
			name: "the original's handshake-idle-timeout spelling",
			toml: "[relay]\ntoken = \"rt\"\nhandshake-idle-timeout = \"30s\"\n",
			check: func(t *testing.T, s config.RelaySettings) {
				if s.HandshakeTimeout != 30*time.Second {
					t.Errorf("handshake timeout %v, want 30s", s.HandshakeTimeout)
				}
			},
		},
		{
			name: "both spellings in one file",
			toml: "[relay]\ntoken = \"rt\"\nhandshake-timeout = \"1m\"\nhandshake-idle-timeout = \"30s\"\n",
			errs: []wantErr{{"-", "relay.handshake-idle-timeout", "only one of handshake-timeout and handshake-idle-timeout"}},
		},
		{
			name: "a bad value is reported under the spelling used",
			toml: "[relay]\ntoken = \"rt\"\nhandshake-idle-timeout = \"soon\"\n",
			errs: []wantErr{{"-", "relay.handshake-idle-timeout", "soon"}},
		},
		{
			name: "bad values",
			toml: `
[relay]
token = "rt"
control-addr = "localhost"
control-cas-file = "garbage.pem"
handshake-timeout = "0"
status-addr = "nope"
[[relay.ingress]]
addr = "x"
`,
			errs: []wantErr{
				{"-", "relay.control-addr", "expected host:port"},
				{"-", "relay.control-cas-file", "no PEM certificates"},
				{"-", "relay.handshake-timeout", "greater than zero"},
				{"-", "relay.status-addr", "expected [host]:port"},
				{"-", "relay.ingress[0].addr", "expected [host]:port"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "relay.toml", tt.toml)
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := cfg.RelaySettings(envMap(tt.env))
			if tt.errs != nil {
				for i := range tt.errs {
					if tt.errs[i].Origin == "-" {
						tt.errs[i].Origin = path
					}
				}
				wantErrors(t, err, tt.errs...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestRelayFlagTokenOverridesTokenFile(t *testing.T) {
	dir := t.TempDir()
	cfg := load(t, dir, "relay.toml", "[relay]\ntoken-file = \""+writeFile(t, dir, "tok", "from-file")+"\"\n")
	cfg.Merge(&config.Config{Relay: config.RelayConfig{Token: "from-flag"}}, "flag --token")
	s, err := cfg.RelaySettings(nil)
	if err != nil || s.Token != "from-flag" {
		t.Fatalf("token %q, err %v", s.Token, err)
	}
}

func TestRelayHandshakeSpellingOfLaterFileWins(t *testing.T) {
	dir := t.TempDir()
	first := writeFile(t, dir, "a.toml", "[relay]\ntoken = \"rt\"\nhandshake-timeout = \"1m\"\n")
	second := writeFile(t, dir, "b.toml", "[relay]\nhandshake-idle-timeout = \"30s\"\n")
	cfg, err := config.Load(first, second)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.RelaySettings(nil)
	if err != nil || s.HandshakeTimeout != 30*time.Second {
		t.Fatalf("handshake timeout %v (err %v), want the later file's 30s", s.HandshakeTimeout, err)
	}
}
