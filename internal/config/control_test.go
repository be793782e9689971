package config_test

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/p2pconnet/connet/internal/config"
)

const (
	ctlClientsIngress = "[[control.clients-ingress]]\ncert-file = \"srv.cert.pem\"\nkey-file = \"srv.key.pem\"\n"
	ctlRelaysIngress  = "[[control.relays-ingress]]\ncert-file = \"srv.cert.pem\"\nkey-file = \"srv.key.pem\"\n"
)

func TestControlSettings(t *testing.T) {
	serverFixture(t)
	tests := []struct {
		name  string
		toml  string
		env   map[string]string
		check func(*testing.T, config.ControlSettings)
		errs  []wantErr
	}{
		{
			name: "clients only",
			toml: "[control]\nclients-tokens = [\"c\"]\n" + ctlClientsIngress,
			check: func(t *testing.T, s config.ControlSettings) {
				if !reflect.DeepEqual(s.ClientsTokens, []string{"c"}) || len(s.ClientsIngress) != 1 || s.ClientsIngress[0].Addr != ":19190" {
					t.Errorf("clients %+v", s)
				}
				if s.RelaysTokens != nil || s.RelaysIngress != nil || s.RelaysTokenRestrictions != nil {
					t.Errorf("relays should be off: %+v", s)
				}
			},
		},
		{
			name: "with relays",
			toml: "[control]\nclients-tokens-file = \"tokens\"\nrelays-tokens = [\"r1\", \"r2\"]\nstatus-addr = \":19180\"\n" + ctlClientsIngress + ctlRelaysIngress + `
[[control.clients-token-restriction]]
name-matches = "a"
[[control.clients-token-restriction]]
role-matches = "source"
[[control.relays-token-restriction]]
allow-cidrs = ["10.0.0.0/8"]
[[control.relays-token-restriction]]
deny-cidrs = ["10.0.0.0/8"]
`,
			env: map[string]string{"STATE_DIRECTORY": "/state"},
			check: func(t *testing.T, s config.ControlSettings) {
				if !reflect.DeepEqual(s.ClientsTokens, []string{"tok-a", "tok-b"}) || len(s.ClientsTokenRestrictions) != 2 {
					t.Errorf("clients %+v", s)
				}
				if len(s.RelaysIngress) != 1 || s.RelaysIngress[0].Addr != ":19189" {
					t.Errorf("relays ingress %+v", s.RelaysIngress)
				}
				ip := netip.MustParseAddr("10.1.2.3")
				if len(s.RelaysTokenRestrictions) != 2 || !s.RelaysTokenRestrictions[0].Allowed(ip) || s.RelaysTokenRestrictions[1].Allowed(ip) {
					t.Errorf("relay restrictions %+v", s.RelaysTokenRestrictions)
				}
				if s.StatusAddr != ":19180" || s.StoreDir != "/state" {
					t.Errorf("status %q store %q", s.StatusAddr, s.StoreDir)
				}
			},
		},
		{
			name: "store-dir beats env",
			toml: "[control]\nclients-tokens = [\"c\"]\nstore-dir = \"cfg\"\n" + ctlClientsIngress,
			env:  map[string]string{"CONNET_STATE_DIR": "/env"},
			check: func(t *testing.T, s config.ControlSettings) {
				if s.StoreDir != "cfg" {
					t.Errorf("store %q", s.StoreDir)
				}
			},
		},
		{
			name: "relay tokens need a relays ingress",
			toml: "[control]\nclients-tokens = [\"c\"]\nrelays-tokens = [\"r\"]\n" + ctlClientsIngress,
			errs: []wantErr{{"", "control.relays-ingress", "at least one ingress"}},
		},
		{
			name: "missing everything",
			toml: "[control]\n",
			errs: []wantErr{
				{"", "control.clients-tokens", "at least one client token"},
				{"", "control.clients-ingress", "at least one ingress"},
			},
		},
		{
			name: "restriction counts",
			toml: "[control]\nclients-tokens = [\"c\"]\nrelays-tokens = [\"r\"]\n" + ctlClientsIngress + ctlRelaysIngress + `
[[control.clients-token-restriction]]
[[control.clients-token-restriction]]
[[control.relays-token-restriction]]
[[control.relays-token-restriction]]
`,
			errs: []wantErr{
				{"-", "control.clients-token-restriction", "2 restrictions for 1 tokens"},
				{"-", "control.relays-token-restriction", "2 restrictions for 1 tokens"},
			},
		},
		{
			name: "relays ingress errors",
			toml: "[control]\nclients-tokens = [\"c\"]\nrelays-tokens-file = \"blank-tokens\"\n" + ctlClientsIngress + "[[control.relays-ingress]]\naddr = \":x\"\n",
			errs: []wantErr{
				{"-", "control.relays-tokens-file", "no tokens"},
				{"-", "control.relays-ingress[0].addr", `invalid port "x"`},
				{"-", "control.relays-ingress[0].cert-file", "required"},
				{"-", "control.relays-ingress[0].key-file", "required"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "control.toml", tt.toml)
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := cfg.ControlSettings(envMap(tt.env))
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
