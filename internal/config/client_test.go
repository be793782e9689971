package config_test

import (
	"encoding/base32"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/e2ee"
	"github.com/p2pconnet/connet/internal/portmap"
)

func TestClientToken(t *testing.T) {
	dir := t.TempDir()
	tokenFile := writeFile(t, dir, "token", "  from-file \n")
	emptyFile := writeFile(t, dir, "empty", "\n\n")
	tests := []struct {
		name   string
		client string
		env    map[string]string
		want   string
		err    *wantErr
	}{
		{name: "token", client: `token = "inline"`, want: "inline"},
		{name: "token-file wins and is trimmed", client: `token = "inline"` + "\ntoken-file = \"" + tokenFile + `"`, want: "from-file"},
		{name: "env fallback", env: map[string]string{"CONNET_TOKEN": " env "}, want: "env"},
		{name: "config beats env", client: `token = "inline"`, env: map[string]string{"CONNET_TOKEN": "env"}, want: "inline"},
		{name: "missing", err: &wantErr{"", "client.token", "CONNET_TOKEN"}},
		{name: "empty token file", client: `token-file = "` + emptyFile + `"`, err: &wantErr{"-", "client.token-file", "is empty"}},
		{name: "unreadable token file", client: `token-file = "` + dir + `/nope"`, env: map[string]string{"CONNET_TOKEN": "env"}, err: &wantErr{"-", "client.token-file", "cannot read file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			path := writeFile(t, d, "c.toml", "[client]\n"+tt.client+"\n")
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := cfg.ClientSettings(envMap(tt.env))
			if tt.err != nil {
				w := *tt.err
				if w.Origin == "-" {
					w.Origin = path
				}
				wantErrors(t, err, w)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Token != tt.want {
				t.Fatalf("token = %q, want %q", s.Token, tt.want)
			}
		})
	}
}

func TestClientDefaults(t *testing.T) {
	var cfg config.Config
	cfg.Merge(&config.Config{Client: config.ClientConfig{Token: "t"}}, "test")
	s, err := cfg.ClientSettings(nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.ServerAddr != "127.0.0.1:19190" || s.ServerName != "127.0.0.1" || s.ServerCAs != nil {
		t.Errorf("server defaults: %q %q %v", s.ServerAddr, s.ServerName, s.ServerCAs)
	}
	if s.DirectAddr != ":19192" || s.StatusAddr != "" || s.NatPMP != portmap.ModeSystem {
		t.Errorf("defaults: %q %q %q", s.DirectAddr, s.StatusAddr, s.NatPMP)
	}
	if s.HandshakeIdleTimeout != 5*time.Second {
		t.Errorf("handshake idle timeout = %v", s.HandshakeIdleTimeout)
	}
	if s.MaxPendingStreams != 0 {
		t.Errorf("max pending streams = %d, want 0 (the default)", s.MaxPendingStreams)
	}
	if !reflect.DeepEqual(s.RelayEncryptions, []e2ee.Encryption{e2ee.None}) {
		t.Errorf("relay encryptions = %v", s.RelayEncryptions)
	}
	if s.StatelessResetKey != nil || s.ResetKeyCacheDir != "" {
		t.Errorf("reset key: %v %q", s.StatelessResetKey, s.ResetKeyCacheDir)
	}
	if len(s.Destinations) != 0 || len(s.Sources) != 0 {
		t.Errorf("endpoints: %v %v", s.Destinations, s.Sources)
	}
}

func TestClientFields(t *testing.T) {
	dir := t.TempDir()
	ca := writeCert(t, dir, "ca")
	notPEM := writeFile(t, dir, "not.pem", "hello")
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	keyText := base32.HexEncoding.EncodeToString(key)
	rawKeyFile := writeFile(t, dir, "raw.key", string(key))
	textKeyFile := writeFile(t, dir, "text.key", keyText+"\n")
	shortKeyFile := writeFile(t, dir, "short.key", "ABC")

	tests := []struct {
		name  string
		extra string
		check func(t *testing.T, s config.ClientSettings)
		err   *wantErr // Origin is always the file
	}{
		{name: "server-name from server-addr", extra: `server-addr = "ctl.example.com:1"`, check: func(t *testing.T, s config.ClientSettings) {
			if s.ServerName != "ctl.example.com" {
				t.Errorf("server name %q", s.ServerName)
			}
		}},
		{name: "explicit server-name", extra: "server-addr = \"10.0.0.1:1\"\nserver-name = \"ctl.example.com\"", check: func(t *testing.T, s config.ClientSettings) {
			if s.ServerName != "ctl.example.com" || s.ServerAddr != "10.0.0.1:1" {
				t.Errorf("server %q %q", s.ServerAddr, s.ServerName)
			}
		}},
		{name: "ipv6 server-addr", extra: `server-addr = "[::1]:19190"`, check: func(t *testing.T, s config.ClientSettings) {
			if s.ServerName != "::1" {
				t.Errorf("server name %q", s.ServerName)
			}
		}},
		{name: "server-addr without port", extra: `server-addr = "example.com"`, err: &wantErr{Key: "client.server-addr", Reason: "expected host:port"}},
		{name: "server-addr without host", extra: `server-addr = ":19190"`, err: &wantErr{Key: "client.server-addr", Reason: "host is required"}},
		{name: "server-addr bad port", extra: `server-addr = "h:http"`, err: &wantErr{Key: "client.server-addr", Reason: `invalid port "http"`}},
		{name: "server-addr port 0", extra: `server-addr = "h:0"`, err: &wantErr{Key: "client.server-addr", Reason: "port 0"}},
		{name: "server-cas-file", extra: `server-cas-file = "` + ca.Cert + `"`, check: func(t *testing.T, s config.ClientSettings) {
			if s.ServerCAs == nil {
				t.Error("no cert pool")
			}
		}},
		{name: "server-cas-file missing", extra: `server-cas-file = "` + dir + `/missing.pem"`, err: &wantErr{Key: "client.server-cas-file", Reason: "cannot read file"}},
		{name: "server-cas-file not PEM", extra: `server-cas-file = "` + notPEM + `"`, err: &wantErr{Key: "client.server-cas-file", Reason: "no PEM certificates"}},
		{name: "direct-addr", extra: `direct-addr = "0.0.0.0:4000"`, check: func(t *testing.T, s config.ClientSettings) {
			if s.DirectAddr != "0.0.0.0:4000" {
				t.Errorf("direct addr %q", s.DirectAddr)
			}
		}},
		{name: "direct-addr invalid", extra: `direct-addr = "4000"`, err: &wantErr{Key: "client.direct-addr", Reason: "expected [host]:port"}},
		{name: "status-addr", extra: `status-addr = "127.0.0.1:19182"`, check: func(t *testing.T, s config.ClientSettings) {
			if s.StatusAddr != "127.0.0.1:19182" {
				t.Errorf("status addr %q", s.StatusAddr)
			}
		}},
		{name: "status-addr invalid", extra: `status-addr = "localhost:99999"`, err: &wantErr{Key: "client.status-addr", Reason: "invalid port"}},
		{name: "reset key inline", extra: `direct-stateless-reset-key = "` + keyText + `"`, check: func(t *testing.T, s config.ClientSettings) {
			if s.StatelessResetKey == nil || !reflect.DeepEqual(s.StatelessResetKey[:], key) {
				t.Errorf("key %v", s.StatelessResetKey)
			}
		}},
		{name: "reset key inline unpadded lowercase", extra: `direct-stateless-reset-key = "` + strings.ToLower(strings.TrimRight(keyText, "=")) + `"`, check: func(t *testing.T, s config.ClientSettings) {
			if s.StatelessResetKey == nil || s.StatelessResetKey[31] != 31 {
				t.Errorf("key %v", s.StatelessResetKey)
			}
		}},
		{name: "reset key wrong length", extra: `direct-stateless-reset-key = "` + base32.HexEncoding.EncodeToString(key[:16]) + `"`, err: &wantErr{Key: "client.direct-stateless-reset-key", Reason: "decoded to 16 bytes"}},
		{name: "reset key not base32hex", extra: `direct-stateless-reset-key = "WXYZ"`, err: &wantErr{Key: "client.direct-stateless-reset-key", Reason: "base32hex"}},
		{name: "reset key raw file", extra: `direct-stateless-reset-key-file = "` + rawKeyFile + `"`, check: func(t *testing.T, s config.ClientSettings) {
			if s.StatelessResetKey == nil || !reflect.DeepEqual(s.StatelessResetKey[:], key) {
				t.Errorf("key %v", s.StatelessResetKey)
			}
		}},
		{name: "reset key text file", extra: `direct-stateless-reset-key-file = "` + textKeyFile + `"`, check: func(t *testing.T, s config.ClientSettings) {
			if s.StatelessResetKey == nil || !reflect.DeepEqual(s.StatelessResetKey[:], key) {
				t.Errorf("key %v", s.StatelessResetKey)
			}
		}},
		{name: "reset key bad file", extra: `direct-stateless-reset-key-file = "` + shortKeyFile + `"`, err: &wantErr{Key: "client.direct-stateless-reset-key-file", Reason: "want 32 raw bytes"}},
		{name: "nat-pmp dial", extra: `nat-pmp = "dial"`, check: func(t *testing.T, s config.ClientSettings) {
			if s.NatPMP != portmap.ModeDial {
				t.Errorf("nat-pmp %q", s.NatPMP)
			}
		}},
		{name: "nat-pmp system", extra: `nat-pmp = "system"`, check: func(t *testing.T, s config.ClientSettings) {
			if s.NatPMP != portmap.ModeSystem {
				t.Errorf("nat-pmp %q", s.NatPMP)
			}
		}},
		{name: "nat-pmp forced pcp", extra: `nat-pmp = "pcp"`, check: func(t *testing.T, s config.ClientSettings) {
			if s.NatPMP != portmap.ModeOnlyPCP {
				t.Errorf("nat-pmp %q", s.NatPMP)
			}
		}},
		{name: "nat-pmp disabled", extra: `nat-pmp = "disabled"`, check: func(t *testing.T, s config.ClientSettings) {
			if s.NatPMP != portmap.ModeDisabled {
				t.Errorf("nat-pmp %q", s.NatPMP)
			}
		}},
		{name: "nat-pmp invalid", extra: `nat-pmp = "igd"`, err: &wantErr{Key: "client.nat-pmp", Reason: `invalid value "igd": must be one of "system", "dial", "disabled", "nat-pmp", "pcp", "upnp"`}},
		{name: "handshake-idle-timeout", extra: `handshake-idle-timeout = "1m"`, check: func(t *testing.T, s config.ClientSettings) {
			if s.HandshakeIdleTimeout != time.Minute {
				t.Errorf("timeout %v", s.HandshakeIdleTimeout)
			}
		}},
		{name: "handshake-idle-timeout invalid", extra: `handshake-idle-timeout = "soon"`, err: &wantErr{Key: "client.handshake-idle-timeout", Reason: `invalid duration "soon"`}},
		{name: "handshake-idle-timeout zero", extra: `handshake-idle-timeout = "0s"`, err: &wantErr{Key: "client.handshake-idle-timeout", Reason: "greater than zero"}},
		{name: "handshake-idle-timeout negative", extra: `handshake-idle-timeout = "-1s"`, err: &wantErr{Key: "client.handshake-idle-timeout", Reason: "negative"}},
		{name: "max-pending-streams", extra: `max-pending-streams = 4096`, check: func(t *testing.T, s config.ClientSettings) {
			if s.MaxPendingStreams != 4096 {
				t.Errorf("max pending streams %d", s.MaxPendingStreams)
			}
		}},
		{name: "max-pending-streams negative", extra: `max-pending-streams = -1`, err: &wantErr{Key: "client.max-pending-streams", Reason: "invalid value -1: must not be negative"}},
		{name: "relay-encryptions", extra: `relay-encryptions = ["none", "dhxcp", "tls"]`, check: func(t *testing.T, s config.ClientSettings) {
			want := []e2ee.Encryption{e2ee.None, e2ee.DHXCP, e2ee.TLS}
			if !reflect.DeepEqual(s.RelayEncryptions, want) {
				t.Errorf("encryptions %v", s.RelayEncryptions)
			}
		}},
		{name: "relay-encryptions unknown", extra: `relay-encryptions = ["tls", "aes"]`, err: &wantErr{Key: "client.relay-encryptions[1]", Reason: `invalid value "aes"`}},
		{name: "relay-encryptions duplicate", extra: `relay-encryptions = ["tls", "tls"]`, err: &wantErr{Key: "client.relay-encryptions[1]", Reason: `duplicate value "tls"`}},
		{name: "relay-encryptions empty value", extra: `relay-encryptions = [""]`, err: &wantErr{Key: "client.relay-encryptions[0]", Reason: "empty value"}},
		{name: "metadata", extra: `metadata = "home"`, check: func(t *testing.T, s config.ClientSettings) {
			if s.Metadata != "home" {
				t.Errorf("metadata %q", s.Metadata)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "c.toml", "[client]\ntoken = \"t\"\n"+tt.extra+"\n")
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := cfg.ClientSettings(nil)
			if tt.err != nil {
				w := *tt.err
				w.Origin = path
				wantErrors(t, err, w)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestClientResetKeyCacheDir(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CONNET_CACHE_DIR": "/c", "CACHE_DIRECTORY": "/s", "XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/c"},
		{map[string]string{"CACHE_DIRECTORY": "/s1:/s2", "XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/s1"},
		{map[string]string{"XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/x/connet"},
		{map[string]string{"HOME": "/h"}, "/h/.cache/connet"},
		{map[string]string{}, ""},
	}
	var cfg config.Config
	cfg.Merge(&config.Config{Client: config.ClientConfig{Token: "t"}}, "test")
	for _, tt := range tests {
		s, err := cfg.ClientSettings(envMap(tt.env))
		if err != nil {
			t.Fatal(err)
		}
		if s.ResetKeyCacheDir != tt.want {
			t.Errorf("env %v: cache dir %q, want %q", tt.env, s.ResetKeyCacheDir, tt.want)
		}
	}

	// An explicit key makes the cache irrelevant.
	cfg.Merge(&config.Config{Client: config.ClientConfig{DirectStatelessResetKey: base32.HexEncoding.EncodeToString(make([]byte, 32))}}, "test")
	s, err := cfg.ClientSettings(envMap(map[string]string{"CONNET_CACHE_DIR": "/c"}))
	if err != nil || s.StatelessResetKey == nil || s.ResetKeyCacheDir != "" {
		t.Fatalf("explicit key: %v %v %q", err, s.StatelessResetKey, s.ResetKeyCacheDir)
	}
}

func TestClientReportsAllProblems(t *testing.T) {
	path := writeFile(t, t.TempDir(), "c.toml", `
[client]
nat-pmp = "x"
handshake-idle-timeout = "y"
[client.destinations.a]
url = "ftp://h:1"
[client.sources.a]
route = "sometimes"
url = "tcp://:1"
`)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.ClientSettings(nil)
	wantErrors(t, err,
		wantErr{"", "client.token", "required"},
		wantErr{path, "client.nat-pmp", "invalid value"},
		wantErr{path, "client.handshake-idle-timeout", "invalid duration"},
		wantErr{path, "client.destinations.a.url", "unsupported scheme"},
		wantErr{path, "client.sources.a.route", "invalid value"},
	)
}
