package config_test

import (
	"reflect"
	"testing"

	"github.com/p2pconnet/connet/internal/config"
)

func TestSourceAllowedHosts(t *testing.T) {
	tests := []endpointCase{
		{name: "http", body: "url = \"http://127.0.0.1:8080\"\nallowed-hosts = [\"App.Example.com\", \"api.example.com:8443\", \"tunnel.example.com.\", \"[::1]:8080\", \"*\"]"},
		{name: "ws", body: "url = \"ws://:8081\"\nallowed-hosts = [\"app.example.com\"]"},
		{name: "https", body: "url = \"https://:8443\"\ncert-file = \"c.pem\"\nkey-file = \"k.pem\"\nallowed-hosts = [\"app.example.com\"]"},
		{name: "default", body: `url = "http://127.0.0.1:8080"`},
		{name: "on tcp", body: "url = \"tcp://:1\"\nallowed-hosts = [\"app.example.com\"]", err: &wantErr{Key: ".allowed-hosts", Reason: "only applies to http, https, ws and wss sources (this source is tcp)"}},
		{name: "on tls", body: "url = \"tls://:1\"\ncert-file = \"c.pem\"\nkey-file = \"k.pem\"\nallowed-hosts = [\"*\"]", err: &wantErr{Key: ".allowed-hosts", Reason: "a tls source sees no host names"}},
		{name: "a URL", body: "url = \"http://:1\"\nallowed-hosts = [\"https://app.example.com\"]", err: &wantErr{Key: ".allowed-hosts[0]", Reason: `invalid host "https://app.example.com": a host name, not a URL`}},
		{name: "a path", body: "url = \"http://:1\"\nallowed-hosts = [\"app.example.com/x\"]", err: &wantErr{Key: ".allowed-hosts[0]", Reason: "not a URL"}},
		{name: "subdomain wildcard", body: "url = \"http://:1\"\nallowed-hosts = [\"ok.example.com\", \"*.example.com\"]", err: &wantErr{Key: ".allowed-hosts[1]", Reason: `wildcards are not supported: list each name, or "*" alone for any`}},
		{name: "bad port", body: "url = \"http://:1\"\nallowed-hosts = [\"app.example.com:99999\"]", err: &wantErr{Key: ".allowed-hosts[0]", Reason: "invalid port"}},
		{name: "empty port", body: "url = \"http://:1\"\nallowed-hosts = [\"app.example.com:\"]", err: &wantErr{Key: ".allowed-hosts[0]", Reason: "empty port"}},
		{name: "empty", body: "url = \"http://:1\"\nallowed-hosts = [\"\"]", err: &wantErr{Key: ".allowed-hosts[0]", Reason: "host is required"}},
		{name: "bad character", body: "url = \"http://:1\"\nallowed-hosts = [\"app example.com\"]", err: &wantErr{Key: ".allowed-hosts[0]", Reason: `character ' ' is not allowed`}},
		{name: "empty label", body: "url = \"http://:1\"\nallowed-hosts = [\"app..example.com\"]", err: &wantErr{Key: ".allowed-hosts[0]", Reason: "empty label"}},
	}
	check := map[string]func(*testing.T, config.SourceSettings){
		"http": func(t *testing.T, s config.SourceSettings) {
			want := []string{"app.example.com", "api.example.com:8443", "tunnel.example.com", "[::1]:8080", "*"}
			if !reflect.DeepEqual(s.AllowedHosts, want) {
				t.Errorf("allowed hosts %q, want %q", s.AllowedHosts, want)
			}
		},
		"default": func(t *testing.T, s config.SourceSettings) {
			if s.AllowedHosts != nil {
				t.Errorf("default allowed hosts %q, want none", s.AllowedHosts)
			}
		},
	}
	runEndpointCases(t, "sources", tests, func(s config.ClientSettings) config.SourceSettings { return s.Sources["x"] }, check)
}

func TestDestinationServeDotfiles(t *testing.T) {
	tests := []endpointCase{
		{name: "file", body: "url = \"file:./www\"\nserve-dotfiles = true"},
		{name: "default", body: `url = "file:./www"`},
		{name: "false anywhere", body: "url = \"tcp://:1\"\nserve-dotfiles = false"},
		{name: "on http", body: "url = \"http://h:1\"\nserve-dotfiles = true", err: &wantErr{Key: ".serve-dotfiles", Reason: "applies only to file destinations, not http: it would be ignored"}},
		{name: "on tcp", body: "url = \"tcp://:1\"\nserve-dotfiles = true", err: &wantErr{Key: ".serve-dotfiles", Reason: "applies only to file destinations, not tcp"}},
	}
	check := map[string]func(*testing.T, config.DestinationSettings){
		"file": func(t *testing.T, d config.DestinationSettings) {
			if !d.ServeDotfiles {
				t.Error("serve-dotfiles = true not applied")
			}
		},
		"default": func(t *testing.T, d config.DestinationSettings) {
			if d.ServeDotfiles {
				t.Error("dotfiles served by default")
			}
		},
	}
	runEndpointCases(t, "destinations", tests, func(s config.ClientSettings) config.DestinationSettings { return s.Destinations["x"] }, check)
}

// TestServeDotfilesTypeAndPlace: serve-dotfiles is a boolean of
// destinations; a string, or the key on a source, is refused at load.
func TestServeDotfilesTypeAndPlace(t *testing.T) {
	for content, want := range map[string]wantErr{
		"[client.destinations.d]\nurl = \"file:./www\"\nserve-dotfiles = \"yes\"\n": {Key: "client.destinations.d.serve-dotfiles", Reason: "expected boolean, got string"},
		"[client.sources.s]\nurl = \"http://:1\"\nserve-dotfiles = true\n":          {Key: "client.sources.s.serve-dotfiles", Reason: "unknown key"},
	} {
		path := writeFile(t, t.TempDir(), "c.toml", content)
		_, err := config.Load(path)
		want.Origin = path
		wantErrors(t, err, want)
	}
}
