package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/balance"
	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/e2ee"
	"github.com/p2pconnet/connet/internal/netpath"
)

// endpointCase describes one [client.destinations.x] or [client.sources.x]
// body and what it should resolve to.
type endpointCase struct {
	name string
	body string
	err  *wantErr // Key relative to the endpoint table; Origin is the file
}

// runEndpointCases runs each case in a directory that holds the files the
// bodies name: c.pem and k.pem (a certificate and its key), ca.pem (a CA),
// notpem.txt (not PEM), the directories www and relative/path, and the
// file a-file; "$DIR" in a body is that directory's absolute path.
func runEndpointCases[T any](t *testing.T, kind string, tests []endpointCase, get func(config.ClientSettings) T, check map[string]func(*testing.T, T)) {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM := genCert(t)
	writeFile(t, dir, "c.pem", string(certPEM))
	writeFile(t, dir, "k.pem", string(keyPEM))
	writeFile(t, dir, "ca.pem", string(certPEM))
	writeFile(t, dir, "notpem.txt", "not a certificate\n")
	writeFile(t, dir, "www/index.html", "hello\n")
	writeFile(t, dir, "relative/path/index.html", "hello\n")
	writeFile(t, dir, "a-file", "a file, not a directory\n")
	t.Chdir(dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := strings.ReplaceAll(tt.body, "$DIR", dir)
			path := writeFile(t, t.TempDir(), "c.toml",
				"[client]\ntoken = \"t\"\nrelay-encryptions = [\"tls\"]\n[client."+kind+".x]\n"+body+"\n")
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := cfg.ClientSettings(nil)
			if tt.err != nil {
				w := *tt.err
				w.Origin = path
				w.Key = "client." + kind + ".x" + w.Key
				wantErrors(t, err, w)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fn, ok := check[tt.name]; ok {
				fn(t, get(s))
			}
		})
	}
}

func TestDestinations(t *testing.T) {
	tests := []endpointCase{
		{name: "defaults", body: `url = "tcp://:3000"`},
		{name: "all fields", body: `
route = "relay"
relay-encryptions = ["dhxcp", "none"]
proxy-proto-version = "v1"
dial-timeout = "2s"
url = "tls://localhost:3000"
cas-file = "ca.pem"
cert-file = "c.pem"
key-file = "k.pem"`},
		{name: "insecure-skip-verify", body: "url = \"https://localhost:3000\"\ncas-file = \"insecure-skip-verify\""},
		{name: "http with path", body: `url = "http://localhost:3000/path?q=1"`},
		{name: "https default port", body: `url = "https://example.com"`},
		{name: "file absolute", body: `url = "file://$DIR/www"`},
		{name: "file relative", body: `url = "file:./relative/path"`},
		{name: "ipv6", body: `url = "tcp://[::1]:3000"`},
		{name: "route direct", body: "url = \"tcp://:1\"\nroute = \"direct\""},

		{name: "url required", body: `route = "any"`, err: &wantErr{Key: ".url", Reason: "required"}},
		{name: "url unparsable", body: `url = "tcp://[::1"`, err: &wantErr{Key: ".url", Reason: `invalid URL "tcp://[::1"`}},
		{name: "url without scheme", body: `url = "localhost:3000"`, err: &wantErr{Key: ".url", Reason: "a scheme is required"}},
		{name: "source-only scheme", body: `url = "ws://localhost:3000"`, err: &wantErr{Key: ".url", Reason: `unsupported scheme "ws", must be one of file, http, https, tcp, tls`}},
		{name: "tcp needs port", body: `url = "tcp://localhost"`, err: &wantErr{Key: ".url", Reason: "port is required"}},
		{name: "tls needs port", body: `url = "tls://localhost"`, err: &wantErr{Key: ".url", Reason: "port is required"}},
		{name: "tcp takes no path", body: `url = "tcp://localhost:1/x"`, err: &wantErr{Key: ".url", Reason: "no path"}},
		{name: "tcp port range", body: `url = "tcp://localhost:70000"`, err: &wantErr{Key: ".url", Reason: "invalid port"}},
		{name: "tcp port zero", body: `url = "tcp://localhost:0"`, err: &wantErr{Key: ".url", Reason: "port 0"}},
		{name: "http needs host", body: `url = "http://:3000"`, err: &wantErr{Key: ".url", Reason: "host is required"}},
		{name: "userinfo", body: `url = "http://u:p@localhost:3000"`, err: &wantErr{Key: ".url", Reason: "user info"}},
		{name: "file with host", body: `url = "file://relative/path"`, err: &wantErr{Key: ".url", Reason: "file:relative/path"}},
		{name: "file without path", body: `url = "file://"`, err: &wantErr{Key: ".url", Reason: "file path is required"}},
		{name: "bad route", body: "url = \"tcp://:1\"\nroute = \"p2p\"", err: &wantErr{Key: ".route", Reason: `invalid value "p2p"`}},
		{name: "bad proxy proto", body: "url = \"tcp://:1\"\nproxy-proto-version = \"v3\"", err: &wantErr{Key: ".proxy-proto-version", Reason: `invalid value "v3"`}},
		{name: "proxy proto on tls", body: "url = \"tls://h:1\"\nproxy-proto-version = \"v2\""},
		{name: "proxy proto on http", body: "url = \"http://h:1\"\nproxy-proto-version = \"v1\"", err: &wantErr{Key: ".proxy-proto-version", Reason: "applies only to tcp and tls destinations, not http"}},
		{name: "proxy proto on https", body: "url = \"https://h:1\"\nproxy-proto-version = \"v2\"", err: &wantErr{Key: ".proxy-proto-version", Reason: "applies only to tcp and tls destinations, not https"}},
		{name: "proxy proto on file", body: "url = \"file:./www\"\nproxy-proto-version = \"v1\"", err: &wantErr{Key: ".proxy-proto-version", Reason: "applies only to tcp and tls destinations, not file"}},
		{name: "cas-file on tcp", body: "url = \"tcp://:1\"\ncas-file = \"ca.pem\"", err: &wantErr{Key: ".cas-file", Reason: "applies only to tls and https destinations, not tcp"}},
		{name: "client certificate on http", body: "url = \"http://h:1\"\ncas-file = \"insecure-skip-verify\"", err: &wantErr{Key: ".cas-file", Reason: "not http"}},
		{name: "dial-timeout on file", body: "url = \"file:./www\"\ndial-timeout = \"1s\"", err: &wantErr{Key: ".dial-timeout", Reason: "applies only to destinations that dial a service, not file"}},
		{name: "bad dial timeout", body: "url = \"tcp://:1\"\ndial-timeout = \"2x\"", err: &wantErr{Key: ".dial-timeout", Reason: `invalid duration "2x"`}},
		{name: "bad relay encryption", body: "url = \"tcp://:1\"\nrelay-encryptions = [\"rot13\"]", err: &wantErr{Key: ".relay-encryptions[0]", Reason: `invalid value "rot13"`}},
		{name: "cert without key", body: "url = \"tls://h:1\"\ncert-file = \"c\"", err: &wantErr{Key: ".key-file", Reason: "required when cert-file is set"}},
		// The files a destination loads at start are read here already.
		{name: "missing cas-file", body: "url = \"tls://h:1\"\ncas-file = \"missing.pem\"", err: &wantErr{Key: ".cas-file", Reason: "cannot read file: open missing.pem: no such file"}},
		{name: "cas-file not PEM", body: "url = \"https://h:1\"\ncas-file = \"notpem.txt\"", err: &wantErr{Key: ".cas-file", Reason: `no PEM certificates found in "notpem.txt"`}},
		{name: "missing cert-file", body: "url = \"tls://h:1\"\ncert-file = \"missing.pem\"\nkey-file = \"k.pem\"", err: &wantErr{Key: ".cert-file", Reason: "cannot read file"}},
		{name: "cert-file is a key", body: "url = \"tls://h:1\"\ncert-file = \"k.pem\"\nkey-file = \"k.pem\"", err: &wantErr{Key: ".cert-file", Reason: "looks like a private key"}},
		{name: "key-file of another certificate", body: "url = \"tls://h:1\"\ncert-file = \"c.pem\"\nkey-file = \"notpem.txt\"", err: &wantErr{Key: ".key-file", Reason: `invalid private key file "notpem.txt"`}},
		{name: "missing file root", body: `url = "file:./nowhere"`, err: &wantErr{Key: ".url", Reason: `cannot serve "./nowhere": stat ./nowhere: no such file`}},
		{name: "file root is a file", body: `url = "file:./a-file"`, err: &wantErr{Key: ".url", Reason: `cannot serve "./a-file": not a directory`}},
		{name: "key without cert", body: "url = \"tls://h:1\"\nkey-file = \"k\"", err: &wantErr{Key: ".cert-file", Reason: "required when key-file is set"}},
	}
	check := map[string]func(*testing.T, config.DestinationSettings){
		"defaults": func(t *testing.T, d config.DestinationSettings) {
			if d.Name != "x" || d.Route != netpath.RouteAny || d.DialTimeout != 0 || d.ProxyProtoVersion != config.ProxyProtoNone {
				t.Errorf("defaults: %+v", d)
			}
			// Endpoints inherit the client's relay encryptions.
			if !reflect.DeepEqual(d.RelayEncryptions, []e2ee.Encryption{e2ee.TLS}) {
				t.Errorf("inherited encryptions: %v", d.RelayEncryptions)
			}
			if d.URL.Scheme != "tcp" || d.URL.Host != ":3000" {
				t.Errorf("url: %v", d.URL)
			}
		},
		"all fields": func(t *testing.T, d config.DestinationSettings) {
			want := config.DestinationSettings{
				Name: "x", Route: netpath.RouteRelay,
				RelayEncryptions:  []e2ee.Encryption{e2ee.DHXCP, e2ee.None},
				ProxyProtoVersion: config.ProxyProtoV1, DialTimeout: 2 * time.Second,
				URL: d.URL, CAsFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem",
			}
			if !reflect.DeepEqual(d, want) || d.URL.String() != "tls://localhost:3000" {
				t.Errorf("got %+v", d)
			}
		},
		"insecure-skip-verify": func(t *testing.T, d config.DestinationSettings) {
			if !d.InsecureSkipVerify || d.CAsFile != "" {
				t.Errorf("insecure: %+v", d)
			}
		},
		"http with path": func(t *testing.T, d config.DestinationSettings) {
			if d.URL.Path != "/path" || d.URL.RawQuery != "q=1" {
				t.Errorf("url: %v", d.URL)
			}
		},
		"file absolute": func(t *testing.T, d config.DestinationSettings) {
			if !strings.HasPrefix(d.FilePath(), "/") || !strings.HasSuffix(d.FilePath(), "/www") {
				t.Errorf("file path %q", d.FilePath())
			}
		},
		"file relative": func(t *testing.T, d config.DestinationSettings) {
			if d.FilePath() != "./relative/path" {
				t.Errorf("file path %q", d.FilePath())
			}
		},
		"route direct": func(t *testing.T, d config.DestinationSettings) {
			if d.Route != netpath.RouteDirect || d.FilePath() != "" {
				t.Errorf("route %q, file path %q", d.Route, d.FilePath())
			}
		},
	}
	runEndpointCases(t, "destinations", tests, func(s config.ClientSettings) config.DestinationSettings { return s.Destinations["x"] }, check)
}

func TestSources(t *testing.T) {
	tests := []endpointCase{
		{name: "defaults", body: `url = "tcp://:8000"`},
		{name: "all fields", body: `
route = "direct"
relay-encryptions = ["dhxcp"]
dial-timeout = "5s"
url = "https://:8443/app"
cert-file = "c.pem"
key-file = "k.pem"
cas-file = "ca.pem"
lb-policy = "least-conns"
lb-retry = "timed"
lb-retry-max = 250`},
		{name: "tls", body: "url = \"tls://:8003\"\ncert-file = \"c.pem\"\nkey-file = \"k.pem\""},
		{name: "http", body: `url = "http://:8080/path"`},
		{name: "ws", body: `url = "ws://127.0.0.1:8080"`},
		{name: "wss", body: "url = \"wss://127.0.0.1:8083\"\ncert-file = \"c.pem\"\nkey-file = \"k.pem\""},
		{name: "http without port", body: `url = "http://localhost"`},
		{name: "lb count default", body: "url = \"tcp://:1\"\nlb-retry = \"count\""},
		{name: "lb timed default", body: "url = \"tcp://:1\"\nlb-retry = \"timed\""},
		{name: "lb count explicit", body: "url = \"tcp://:1\"\nlb-retry = \"count\"\nlb-retry-max = 5"},
		{name: "lb all refuses max", body: "url = \"tcp://:1\"\nlb-retry = \"all\"\nlb-retry-max = 5", err: &wantErr{Key: ".lb-retry-max", Reason: `applies only to lb-retry "count" and "timed", not lb-retry "all"`}},
		{name: "lb max without retry", body: "url = \"tcp://:1\"\nlb-retry-max = 5", err: &wantErr{Key: ".lb-retry-max", Reason: `not a source without lb-retry`}},
		{name: "tls files on a tcp source", body: "url = \"tcp://:1\"\ncas-file = \"ca.pem\"", err: &wantErr{Key: ".cas-file", Reason: "applies only to tls, https and wss sources, not tcp"}},
		{name: "cas-file on a ws source", body: "url = \"ws://:1\"\ncas-file = \"ca.pem\"", err: &wantErr{Key: ".cas-file", Reason: "applies only to tls, https and wss sources, not ws"}},
		{name: "lb policies", body: "url = \"tcp://:1\"\nlb-policy = \"round-robin\""},

		{name: "destination-only scheme", body: `url = "file:///srv"`, err: &wantErr{Key: ".url", Reason: `unsupported scheme "file"`}},
		{name: "tcp needs port", body: `url = "tcp://0.0.0.0"`, err: &wantErr{Key: ".url", Reason: "port is required"}},
		{name: "empty port", body: `url = "http://localhost:"`, err: &wantErr{Key: ".url", Reason: "empty port"}},
		{name: "tls needs certificate", body: `url = "tls://:8003"`, err: &wantErr{Key: "", Reason: "a tls source needs cert-file and key-file"}},
		{name: "missing server certificate", body: "url = \"https://:8443\"\ncert-file = \"missing.pem\"\nkey-file = \"k.pem\"", err: &wantErr{Key: ".cert-file", Reason: "cannot read file"}},
		{name: "missing server key", body: "url = \"wss://:8443\"\ncert-file = \"c.pem\"\nkey-file = \"missing.pem\"", err: &wantErr{Key: ".key-file", Reason: "cannot read file"}},
		{name: "client CAs not PEM", body: "url = \"tls://:8003\"\ncert-file = \"c.pem\"\nkey-file = \"k.pem\"\ncas-file = \"notpem.txt\"", err: &wantErr{Key: ".cas-file", Reason: "no PEM certificates found"}},
		{name: "wss needs key", body: "url = \"wss://:8083\"\ncert-file = \"c\"", err: &wantErr{Key: "", Reason: "a wss source needs cert-file and key-file"}},
		{name: "insecure-skip-verify is for destinations", body: "url = \"tls://:1\"\ncert-file = \"c.pem\"\nkey-file = \"k.pem\"\ncas-file = \"insecure-skip-verify\"", err: &wantErr{Key: ".cas-file", Reason: "only applies to destinations"}},
		{name: "bad lb policy", body: "url = \"tcp://:1\"\nlb-policy = \"fastest\"", err: &wantErr{Key: ".lb-policy", Reason: `invalid value "fastest": must be one of "least-latency", "least-conns", "round-robin", "random"`}},
		{name: "bad lb retry", body: "url = \"tcp://:1\"\nlb-retry = \"forever\"", err: &wantErr{Key: ".lb-retry", Reason: `invalid value "forever"`}},
		{name: "negative lb retry max", body: "url = \"tcp://:1\"\nlb-retry = \"count\"\nlb-retry-max = -1", err: &wantErr{Key: ".lb-retry-max", Reason: "must not be negative"}},
		{name: "negative dial timeout", body: "url = \"tcp://:1\"\ndial-timeout = \"-5s\"", err: &wantErr{Key: ".dial-timeout", Reason: "must not be negative"}},

		{name: "allowed origins", body: "url = \"ws://:8080\"\nallowed-origins = [\"https://App.Example.com\", \"http://localhost:8080\", \"*\"]"},
		{name: "allowed origins wss", body: "url = \"wss://:8083\"\ncert-file = \"c.pem\"\nkey-file = \"k.pem\"\nallowed-origins = [\"https://a.example\"]"},
		{name: "allowed origins on tcp", body: "url = \"tcp://:1\"\nallowed-origins = [\"https://a.example\"]", err: &wantErr{Key: ".allowed-origins", Reason: "only applies to ws and wss sources"}},
		{name: "allowed origins on http", body: "url = \"http://:1\"\nallowed-origins = [\"*\"]", err: &wantErr{Key: ".allowed-origins", Reason: "only applies to ws and wss sources"}},
		{name: "allowed origin with path", body: "url = \"ws://:1\"\nallowed-origins = [\"https://a.example/app\"]", err: &wantErr{Key: ".allowed-origins[0]", Reason: "no path"}},
		{name: "allowed origin without scheme", body: "url = \"ws://:1\"\nallowed-origins = [\"*\", \"a.example\"]", err: &wantErr{Key: ".allowed-origins[1]", Reason: "scheme must be http or https"}},
		{name: "allowed origin ws scheme", body: "url = \"ws://:1\"\nallowed-origins = [\"ws://a.example\"]", err: &wantErr{Key: ".allowed-origins[0]", Reason: "scheme must be http or https"}},
		{name: "allowed origin without host", body: "url = \"ws://:1\"\nallowed-origins = [\"https://\"]", err: &wantErr{Key: ".allowed-origins[0]", Reason: "host is required"}},
		{name: "allowed origin bad port", body: "url = \"ws://:1\"\nallowed-origins = [\"https://a.example:99999\"]", err: &wantErr{Key: ".allowed-origins[0]", Reason: "invalid port"}},
	}
	check := map[string]func(*testing.T, config.SourceSettings){
		"allowed origins": func(t *testing.T, s config.SourceSettings) {
			want := []string{"https://app.example.com", "http://localhost:8080", "*"}
			if !reflect.DeepEqual(s.AllowedOrigins, want) {
				t.Errorf("allowed origins %q, want %q", s.AllowedOrigins, want)
			}
		},
		"allowed origins wss": func(t *testing.T, s config.SourceSettings) {
			if !reflect.DeepEqual(s.AllowedOrigins, []string{"https://a.example"}) {
				t.Errorf("allowed origins %q", s.AllowedOrigins)
			}
		},
		"ws": func(t *testing.T, s config.SourceSettings) {
			if s.AllowedOrigins != nil {
				t.Errorf("default allowed origins %q, want none", s.AllowedOrigins)
			}
		},
		"defaults": func(t *testing.T, s config.SourceSettings) {
			if s.Name != "x" || s.Route != netpath.RouteAny || s.LBPolicy != balance.Default || s.LBRetry != balance.Never || s.LBRetryMax != 0 {
				t.Errorf("defaults: %+v", s)
			}
			if !reflect.DeepEqual(s.RelayEncryptions, []e2ee.Encryption{e2ee.TLS}) {
				t.Errorf("inherited encryptions: %v", s.RelayEncryptions)
			}
			if s.URL.Hostname() != "" || s.URL.Port() != "8000" {
				t.Errorf("url %v", s.URL)
			}
		},
		"all fields": func(t *testing.T, s config.SourceSettings) {
			want := config.SourceSettings{
				Name: "x", Route: netpath.RouteDirect,
				RelayEncryptions: []e2ee.Encryption{e2ee.DHXCP},
				DialTimeout:      5 * time.Second, URL: s.URL,
				CertFile: "c.pem", KeyFile: "k.pem", CAsFile: "ca.pem",
				LBPolicy: balance.LeastConns, LBRetry: balance.Timed, LBRetryMax: 250,
			}
			if !reflect.DeepEqual(s, want) || s.URL.String() != "https://:8443/app" {
				t.Errorf("got %+v", s)
			}
		},
		"lb count default": func(t *testing.T, s config.SourceSettings) {
			if s.LBRetryMax != 2 {
				t.Errorf("count default %d", s.LBRetryMax)
			}
		},
		"lb timed default": func(t *testing.T, s config.SourceSettings) {
			if s.LBRetryMax != 1000 {
				t.Errorf("timed default %d", s.LBRetryMax)
			}
		},
		"lb count explicit": func(t *testing.T, s config.SourceSettings) {
			if s.LBRetryMax != 5 {
				t.Errorf("count %d", s.LBRetryMax)
			}
		},
		"lb policies": func(t *testing.T, s config.SourceSettings) {
			if s.LBPolicy != balance.RoundRobin {
				t.Errorf("policy %q", s.LBPolicy)
			}
		},
	}
	runEndpointCases(t, "sources", tests, func(s config.ClientSettings) config.SourceSettings { return s.Sources["x"] }, check)
}

func TestEndpointNameMustNotBeEmpty(t *testing.T) {
	path := writeFile(t, t.TempDir(), "c.toml", "[client]\ntoken = \"t\"\n[client.destinations.\"\"]\nurl = \"tcp://:1\"\n")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.ClientSettings(nil)
	wantErrors(t, err, wantErr{path, `client.destinations.""`, "name must not be empty"})
}
