package forward

import (
	"testing"

	"github.com/p2pconnet/connet/internal/config"
)

func TestHostPolicy(t *testing.T) {
	for _, tc := range []struct {
		url     string
		allowed []string
		host    string
		want    bool
	}{
		{"http://127.0.0.1:8080", nil, "127.0.0.1:8080", true},
		{"http://127.0.0.1:8080", nil, "localhost:8080", true},
		{"http://127.0.0.1:8080", nil, "LocalHost.:8080", true},
		{"http://127.0.0.1:8080", nil, "localhost", true},
		{"http://127.0.0.1:8080", nil, "[::1]:8080", true},
		{"http://127.0.0.1:8080", nil, "127.1.2.3", true},
		// A LAN client, a port forward or a mapped container port: the
		// address is not the listener's, and no name is involved.
		{"http://:8080", nil, "192.168.1.20:8080", true},
		{"http://:8080", nil, "[fe80::1%25eth0]:8080", true},
		{"http://127.0.0.1:8080", nil, "", true},
		{"http://127.0.0.1:8080", nil, "attacker.example:8080", false},
		{"http://127.0.0.1:8080", nil, "attacker.example", false},
		{"http://127.0.0.1:8080", nil, "localhost.attacker.example:8080", false},
		{"http://127.0.0.1:8080", nil, "app.localhost:8080", false},
		{"http://127.0.0.1:8080", nil, "127.0.0.1.nip.io:8080", false},
		{"http://127.0.0.1:8080", nil, "[attacker.example]:8080", false},
		{"http://127.0.0.1:8080", nil, "[::1:8080", false},
		// The URL's own name.
		{"http://myhost.lan:8080", nil, "MyHost.lan:8080", true},
		{"http://myhost.lan:8080", nil, "other.lan:8080", false},
		// allowed-hosts, with and without a port.
		{"http://:8080", []string{"app.example.com"}, "app.example.com:8080", true},
		{"http://:8080", []string{"app.example.com"}, "App.Example.Com.:9", true},
		{"http://:8080", []string{"app.example.com"}, "sub.app.example.com:8080", false},
		{"http://:8080", []string{"app.example.com:8080"}, "app.example.com:8080", true},
		{"http://:8080", []string{"app.example.com:8080"}, "app.example.com:9090", false},
		{"http://:8080", []string{"app.example.com:8080"}, "app.example.com", false},
		// Without a port, Host means the scheme's default port.
		{"http://:80", []string{"app.example.com:80"}, "app.example.com", true},
		{"https://:443", []string{"app.example.com:443"}, "app.example.com", true},
		{"wss://:443", []string{"app.example.com:80"}, "app.example.com", false},
		{"ws://:8080", []string{"*"}, "attacker.example:8080", true},
	} {
		s := config.SourceSettings{URL: mustURL(t, tc.url), AllowedHosts: tc.allowed}
		if got := newHostPolicy(s).allows(tc.host); got != tc.want {
			t.Errorf("%s with allowed-hosts %q: Host %q allowed=%v, want %v", tc.url, tc.allowed, tc.host, got, tc.want)
		}
	}
}
