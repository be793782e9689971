package config_test

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/peer"
)

// serverFixture creates the files server configs refer to and returns the
// directory; the tests refer to them by relative path after a chdir.
func serverFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeCert(t, dir, "srv")
	other := writeCert(t, dir, "other")
	writeFile(t, dir, "tokens", "\n  tok-a  \n\ntok-b\n\n")
	writeFile(t, dir, "dup-tokens", "a\nb\na\n")
	writeFile(t, dir, "blank-tokens", "\n \n")
	writeFile(t, dir, "mismatched.key.pem", readFileT(t, other.Key))
	writeFile(t, dir, "garbage.pem", "not a pem file")
	t.Chdir(dir)
	return dir
}

const srvIngress = "[[server.ingress]]\ncert-file = \"srv.cert.pem\"\nkey-file = \"srv.key.pem\"\n"

func TestServerSettings(t *testing.T) {
	serverFixture(t)
	tests := []struct {
		name  string
		toml  string
		env   map[string]string
		check func(*testing.T, config.ServerSettings)
		errs  []wantErr // Origin "-" means the config file
	}{
		{
			name: "minimal with defaults",
			toml: "[server]\ntokens = [\"a\", \"b\"]\n" + srvIngress,
			check: func(t *testing.T, s config.ServerSettings) {
				if !reflect.DeepEqual(s.Tokens, []string{"a", "b"}) || s.TokenRestrictions != nil {
					t.Errorf("tokens %v %v", s.Tokens, s.TokenRestrictions)
				}
				if len(s.Ingress) != 1 || s.Ingress[0].Addr != ":19190" || len(s.Ingress[0].Certificate.Certificate) == 0 {
					t.Errorf("ingress %+v", s.Ingress)
				}
				want := []config.RelayIngress{{Addr: ":19191", Hostports: []string{"localhost:19191"}, Transports: both}}
				if !reflect.DeepEqual(s.RelayIngress, want) {
					t.Errorf("relay ingress %+v", s.RelayIngress)
				}
				if s.StatusAddr != "" || s.StoreDir != "" {
					t.Errorf("status %q store %q", s.StatusAddr, s.StoreDir)
				}
			},
		},
		{
			name: "tokens-file wins over tokens, trimmed, blank lines skipped",
			toml: "[server]\ntokens = [\"x\"]\ntokens-file = \"tokens\"\n" + srvIngress,
			check: func(t *testing.T, s config.ServerSettings) {
				if !reflect.DeepEqual(s.Tokens, []string{"tok-a", "tok-b"}) {
					t.Errorf("tokens %q", s.Tokens)
				}
			},
		},
		{
			name: "no tokens",
			toml: srvIngress,
			errs: []wantErr{{"", "server.tokens", "at least one client token"}},
		},
		{
			name: "blank tokens file",
			toml: "[server]\ntokens-file = \"blank-tokens\"\n" + srvIngress,
			errs: []wantErr{{"-", "server.tokens-file", `no tokens in "blank-tokens"`}},
		},
		{
			name: "missing tokens file",
			toml: "[server]\ntokens-file = \"nope\"\n" + srvIngress,
			errs: []wantErr{{"-", "server.tokens-file", "cannot read file"}},
		},
		{
			name: "duplicate tokens",
			toml: "[server]\ntokens = [\"a\", \"b\", \"a\"]\n" + srvIngress,
			errs: []wantErr{{"-", "server.tokens[2]", "duplicate token"}},
		},
		{
			name: "duplicate tokens in file",
			toml: "[server]\ntokens-file = \"dup-tokens\"\n" + srvIngress,
			errs: []wantErr{{"-", "server.tokens-file", `duplicate token on line 3 of "dup-tokens"`}},
		},
		{
			name: "empty token",
			toml: "[server]\ntokens = [\"a\", \"\"]\n" + srvIngress,
			errs: []wantErr{{"-", "server.tokens[1]", "empty token"}},
		},
		{
			name: "token restrictions",
			toml: "[server]\ntokens = [\"a\", \"b\"]\n" + srvIngress + `
[[server.token-restriction]]
allow-cidrs = ["192.0.2.0/24", "::ffff:10.0.0.0/104"]
deny-cidrs = ["192.0.2.128/25"]
name-matches = "^web-"
role-matches = "destination"
[[server.token-restriction]]
role-matches = "source"
`,
			check: func(t *testing.T, s config.ServerSettings) {
				if len(s.TokenRestrictions) != 2 {
					t.Fatalf("restrictions %+v", s.TokenRestrictions)
				}
				r := s.TokenRestrictions[0]
				wantAllow := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("10.0.0.0/8")}
				if !reflect.DeepEqual(r.CIDRs.Allow, wantAllow) {
					t.Errorf("allow %v", r.CIDRs.Allow)
				}
				if !r.AllowsName("web-1") || r.AllowsName("db") || r.Role != peer.Destination {
					t.Errorf("restriction %+v", r)
				}
				if !r.AllowsRole(peer.Destination) || r.AllowsRole(peer.Source) {
					t.Errorf("role check")
				}
				r2 := s.TokenRestrictions[1]
				if r2.NameMatches != nil || !r2.AllowsName("anything") || r2.Role != peer.Source {
					t.Errorf("restriction 2 %+v", r2)
				}
			},
		},
		{
			name: "restriction count must match tokens",
			toml: "[server]\ntokens = [\"a\", \"b\"]\n" + srvIngress + "[[server.token-restriction]]\nrole-matches = \"source\"\n",
			errs: []wantErr{{"-", "server.token-restriction", "1 restrictions for 2 tokens"}},
		},
		{
			name: "restriction count uses tokens-file",
			toml: "[server]\ntokens-file = \"tokens\"\n" + srvIngress + "[[server.token-restriction]]\n[[server.token-restriction]]\n[[server.token-restriction]]\n",
			errs: []wantErr{{"-", "server.token-restriction", "3 restrictions for 2 tokens"}},
		},
		{
			name: "bad restriction values",
			toml: "[server]\ntokens = [\"a\"]\n" + srvIngress + `
[[server.token-restriction]]
allow-cidrs = ["192.0.2.0/33"]
deny-cidrs = ["10.0.0.1"]
name-matches = "(["
role-matches = "both"
`,
			errs: []wantErr{
				{"-", "server.token-restriction[0].allow-cidrs[0]", `invalid CIDR "192.0.2.0/33"`},
				{"-", "server.token-restriction[0].deny-cidrs[0]", `invalid CIDR "10.0.0.1"`},
				{"-", "server.token-restriction[0].name-matches", "invalid regular expression"},
				{"-", "server.token-restriction[0].role-matches", `invalid value "both": must be one of "source", "destination"`},
			},
		},
		{
			name: "ingress is required",
			toml: "[server]\ntokens = [\"a\"]\n",
			errs: []wantErr{{"", "server.ingress", "at least one ingress with cert-file and key-file"}},
		},
		{
			name: "ingress cert and key required",
			toml: "[server]\ntokens = [\"a\"]\n[[server.ingress]]\naddr = \":1\"\n",
			errs: []wantErr{
				{"-", "server.ingress[0].cert-file", "required"},
				{"-", "server.ingress[0].key-file", "required"},
			},
		},
		{
			name: "ingress bad cert file",
			toml: "[server]\ntokens = [\"a\"]\n[[server.ingress]]\ncert-file = \"garbage.pem\"\nkey-file = \"srv.key.pem\"\n",
			errs: []wantErr{{"-", "server.ingress[0].cert-file", "no PEM certificate found"}},
		},
		{
			name: "ingress key given as cert",
			toml: "[server]\ntokens = [\"a\"]\n[[server.ingress]]\ncert-file = \"srv.key.pem\"\nkey-file = \"srv.key.pem\"\n",
			errs: []wantErr{{"-", "server.ingress[0].cert-file", "looks like a private key"}},
		},
		{
			name: "ingress missing key file",
			toml: "[server]\ntokens = [\"a\"]\n[[server.ingress]]\ncert-file = \"srv.cert.pem\"\nkey-file = \"nope.pem\"\n",
			errs: []wantErr{{"-", "server.ingress[0].key-file", "cannot read file"}},
		},
		{
			name: "ingress mismatched key",
			toml: "[server]\ntokens = [\"a\"]\n[[server.ingress]]\ncert-file = \"srv.cert.pem\"\nkey-file = \"mismatched.key.pem\"\n",
			errs: []wantErr{{"-", "server.ingress[0].key-file", "does not match"}},
		},
		{
			name: "several ingresses with restrictions",
			toml: "[server]\ntokens = [\"a\"]\n" + srvIngress + srvIngress + "addr = \"127.0.0.1:2000\"\ndeny-cidrs = [\"0.0.0.0/0\"]\n",
			check: func(t *testing.T, s config.ServerSettings) {
				if len(s.Ingress) != 2 || s.Ingress[1].Addr != "127.0.0.1:2000" || s.Ingress[1].Restriction.Allowed(netip.MustParseAddr("1.2.3.4")) {
					t.Errorf("ingress %+v", s.Ingress)
				}
			},
		},
		{
			name: "ingress bad addr and cidr",
			toml: "[server]\ntokens = [\"a\"]\n" + srvIngress + "addr = \"19190\"\nallow-cidrs = [\"x\"]\n",
			errs: []wantErr{
				{"-", "server.ingress[0].addr", "expected [host]:port"},
				{"-", "server.ingress[0].allow-cidrs[0]", `invalid CIDR "x"`},
			},
		},
		{
			name: "relay ingress hostports",
			toml: "[server]\ntokens = [\"a\"]\n" + srvIngress + `
[[server.relay-ingress]]
addr = ":19191"
hostports = ["relay.example.com", "10.0.0.1:2000", "::1", "[2001:db8::1]", "[2001:db8::2]:3000"]
[[server.relay-ingress]]
addr = "0.0.0.0:4000"
`,
			check: func(t *testing.T, s config.ServerSettings) {
				want := []config.RelayIngress{
					{Addr: ":19191", Hostports: []string{"relay.example.com:19191", "10.0.0.1:2000", "[::1]:19191", "[2001:db8::1]:19191", "[2001:db8::2]:3000"}, Transports: both},
					{Addr: "0.0.0.0:4000", Hostports: []string{"localhost:4000"}, Transports: both},
				}
				if !reflect.DeepEqual(s.RelayIngress, want) {
					t.Errorf("relay ingress\n got %+v\nwant %+v", s.RelayIngress, want)
				}
			},
		},
		{
			name: "relay ingress quotas",
			toml: "[server]\ntokens = [\"a\"]\n" + srvIngress + `
[[server.relay-ingress]]
addr = ":19191"
max-client-streams = 100
max-pending-streams = 8
[[server.relay-ingress]]
addr = ":19192"
max-client-streams = -1
`,
			errs: []wantErr{
				{"-", "server.relay-ingress[1].max-client-streams", "must not be negative"},
			},
		},
		{
			name: "relay ingress quotas applied",
			toml: "[server]\ntokens = [\"a\"]\n" + srvIngress + `
[[server.relay-ingress]]
addr = ":19191"
max-client-streams = 100
max-pending-streams = 8
`,
			check: func(t *testing.T, s config.ServerSettings) {
				if in := s.RelayIngress[0]; in.MaxClientStreams != 100 || in.MaxPendingStreams != 8 {
					t.Errorf("relay ingress quotas %+v", in)
				}
			},
		},
		{
			name: "relay ingress bad hostports",
			toml: "[server]\ntokens = [\"a\"]\n" + srvIngress + `
[[server.relay-ingress]]
hostports = ["", "h:x", "a:b:c", ":5", "[host]"]
[[server.relay-ingress]]
addr = ":0"
hostports = ["h", "h:1"]
`,
			errs: []wantErr{
				{"-", "server.relay-ingress[0].hostports[0]", "host is required"},
				{"-", "server.relay-ingress[0].hostports[1]", `invalid port "x"`},
				{"-", "server.relay-ingress[0].hostports[2]", "neither host:port nor an IPv6 address"},
				{"-", "server.relay-ingress[0].hostports[3]", "host is required"},
				{"-", "server.relay-ingress[0].hostports[4]", "neither host:port nor an IPv6 address"},
				{"-", "server.relay-ingress[1].hostports[0]", "port 0"},
			},
		},
		{
			name: "status and store dir",
			toml: "[server]\ntokens = [\"a\"]\nstatus-addr = \"127.0.0.1:19180\"\nstore-dir = \"/var/lib/connet\"\n" + srvIngress,
			env:  map[string]string{"CONNET_STATE_DIR": "/env"},
			check: func(t *testing.T, s config.ServerSettings) {
				if s.StatusAddr != "127.0.0.1:19180" || s.StoreDir != "/var/lib/connet" {
					t.Errorf("status %q store %q", s.StatusAddr, s.StoreDir)
				}
			},
		},
		{
			name: "store dir from CONNET_STATE_DIR",
			toml: "[server]\ntokens = [\"a\"]\n" + srvIngress,
			env:  map[string]string{"CONNET_STATE_DIR": "/env", "STATE_DIRECTORY": "/systemd"},
			check: func(t *testing.T, s config.ServerSettings) {
				if s.StoreDir != "/env" {
					t.Errorf("store %q", s.StoreDir)
				}
			},
		},
		{
			name: "store dir from STATE_DIRECTORY",
			toml: "[server]\ntokens = [\"a\"]\n" + srvIngress,
			env:  map[string]string{"STATE_DIRECTORY": "/systemd/a:/systemd/b", "TMPDIR": "/tmp"},
			check: func(t *testing.T, s config.ServerSettings) {
				if s.StoreDir != "/systemd/a" {
					t.Errorf("store %q", s.StoreDir)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "server.toml", tt.toml)
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := cfg.ServerSettings(envMap(tt.env))
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
