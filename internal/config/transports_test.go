package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/config"
)

// both is an ingress's default: QUIC and TCP at the same port.
var both = config.IngressTransports{QUIC: true, TCP: true, WSS: true}

// TestIngressTransports: ingresses listen on QUIC and TCP unless
// transports says otherwise; tcp-addr moves TCP; nonsense is refused with
// the key's path.
func TestIngressTransports(t *testing.T) {
	relay := func(extra string) string {
		return "[relay]\ntoken = \"rt\"\n[[relay.ingress]]\naddr = \":4000\"\n" + extra
	}
	for _, tc := range []struct {
		name, toml string
		want       config.IngressTransports
		err        string
	}{
		{"default", relay(""), both, ""},
		{"quic only", relay("transports = [\"quic\"]\n"), config.IngressTransports{QUIC: true}, ""},
		{"tcp elsewhere", relay("transports = [\"tcp\", \"quic\"]\ntcp-addr = \":443\"\n"), config.IngressTransports{QUIC: true, TCP: true, TCPAddr: ":443"}, ""},
		{"wss only", relay("transports = [\"wss\"]\ntcp-addr = \":443\"\n"), config.IngressTransports{WSS: true, TCPAddr: ":443"}, ""},
		{"empty is the default", relay("transports = []\n"), both, ""},
		{"twice", relay("transports = [\"tcp\", \"tcp\"]\n"), config.IngressTransports{}, `"tcp" listed twice`},
		{"unknown", relay("transports = [\"sctp\"]\n"), config.IngressTransports{}, `unknown transport "sctp"`},
		{"tcp-addr without tcp", relay("transports = [\"quic\"]\ntcp-addr = \":443\"\n"), config.IngressTransports{}, "relay.ingress[0].tcp-addr: set, but transports has neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tc.toml), "test")
			if err != nil {
				t.Fatal(err)
			}
			s, err := cfg.RelaySettings(func(string) string { return "" })
			if !wantErrContaining(t, err, tc.err) {
				return
			}
			if got := s.Ingress[0].Transports; got != tc.want {
				t.Fatalf("transports %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestClientTransports: a client falls back to TCP then WebSocket at its
// server address by default, at server-tcp-addr when set, and not at all
// with transports = ["quic"].
func TestClientTransports(t *testing.T) {
	for _, tc := range []struct {
		name, extra, err string
		want             config.ClientTransports
	}{
		{"default", "", "", config.ClientTransports{TCP: true, WSS: true, Addr: "ctl.example:19190", QUICRetry: config.DefaultQUICRetry}},
		{"other port", "server-tcp-addr = \"ctl.example:443\"\nquic-retry = \"5s\"\ntransports = [\"quic\", \"wss\"]\n", "",
			config.ClientTransports{WSS: true, Addr: "ctl.example:443", QUICRetry: 5 * time.Second}},
		{"off", "transports = [\"quic\"]\n", "", config.ClientTransports{Addr: "ctl.example:19190", QUICRetry: config.DefaultQUICRetry}},
		{"no quic", "transports = [\"tcp\"]\n", "client.transports: a client needs \"quic\"", config.ClientTransports{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte("[client]\ntoken = \"t\"\nserver-addr = \"ctl.example:19190\"\n"+tc.extra), "test")
			if err != nil {
				t.Fatal(err)
			}
			s, err := cfg.ClientSettings(func(string) string { return "" })
			if !wantErrContaining(t, err, tc.err) {
				return
			}
			if s.Fallback != tc.want {
				t.Fatalf("fallback %+v, want %+v", s.Fallback, tc.want)
			}
		})
	}
}

// wantErrContaining fails the test unless err contains want (or, with
// want empty, is nil), and tells whether there is a result to check.
func wantErrContaining(t *testing.T, err error, want string) bool {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return true
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err %v, want one containing %q", err, want)
	}
	return false
}
