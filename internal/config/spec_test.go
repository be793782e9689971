package config

// These tests prove that the configuration examples printed in the spec
// (kept verbatim under testdata/spec) are accepted. They live inside the
// package so that the absolute paths the examples use (/path/to/...) can be
// served from an in-memory file system instead of the real one.

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/balance"
	"github.com/p2pconnet/connet/internal/e2ee"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/portmap"
)

// fakeFS serves file contents by exact path.
type fakeFS map[string]string

func (f fakeFS) readFile(path string) ([]byte, error) {
	if s, ok := f[path]; ok {
		return []byte(s), nil
	}
	return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
}

// stat finds the directories of f: the keys that end in a slash.
func (f fakeFS) stat(path string) (fs.FileInfo, error) {
	if _, ok := f[strings.TrimSuffix(path, "/")+"/"]; ok {
		return fakeDir(path), nil
	}
	if _, ok := f[path]; ok {
		return nil, fmt.Errorf("fakeFS: %s is a file, which stat does not describe", path)
	}
	return nil, &fs.PathError{Op: "stat", Path: path, Err: fs.ErrNotExist}
}

// fakeDir describes a directory of a fakeFS.
type fakeDir string

func (d fakeDir) Name() string     { return string(d) }
func (fakeDir) Size() int64        { return 0 }
func (fakeDir) Mode() fs.FileMode  { return fs.ModeDir | 0o755 }
func (fakeDir) ModTime() time.Time { return time.Time{} }
func (fakeDir) IsDir() bool        { return true }
func (fakeDir) Sys() any           { return nil }

// specFS holds every file the spec's examples refer to.
func specFS(t *testing.T) fakeFS {
	cert, key := testTLSData(t)
	return fakeFS{
		"cert.pem":            cert,
		"key.pem":             key,
		"path/to/cert.pem":    cert,
		"path/to/key.pem":     key,
		"path/to/ca/file.pem": cert,
		"path/to/relay/token": "token-from-file\n",
		// The full server/control examples have one token restriction, so
		// the token files they name hold one token each.
		"path/to/client/tokens": "client-token-1\n",
		"/path/to/reset/key":    strings.Repeat("k", 32),
		// The endpoints' TLS files and the directories file destinations
		// serve.
		"/path/to/cas/file":  cert,
		"/path/to/cert/file": cert,
		"/path/to/key/file":  key,
		"/absolute/path/":    "",
		"./relative/path/":   "",
	}
}

func specResolver(t *testing.T, file string) *resolver {
	t.Helper()
	cfg, err := Load("testdata/spec/" + file)
	if err != nil {
		t.Fatalf("Load(%s): %v", file, err)
	}
	r := newResolver(cfg, func(string) string { return "" })
	r.readFile, r.stat = specFS(t).readFile, specFS(t).stat
	return r
}

func TestSpecQuickstart(t *testing.T) {
	r := specResolver(t, "quickstart-server.toml")
	srv := r.server()
	if err := r.err(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(srv.Tokens, []string{"client-d-token", "client-s-token"}) || len(srv.Ingress) != 1 || srv.Ingress[0].Addr != ":19190" {
		t.Errorf("server: %+v", srv)
	}

	for _, tc := range []struct{ file, token, endpoint string }{
		{"quickstart-destination.toml", "client-d-token", "dst"},
		{"quickstart-source.toml", "client-s-token", "src"},
	} {
		r := specResolver(t, tc.file)
		cl := r.client()
		if err := r.err(); err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if cl.Token != tc.token || cl.ServerAddr != "SERVER_IP:19190" || cl.ServerName != "SERVER_IP" || cl.ServerCAs == nil {
			t.Errorf("%s: %+v", tc.file, cl)
		}
		switch tc.endpoint {
		case "dst":
			if d := cl.Destinations["serviceA"]; d.URL.String() != "tcp://:3000" || len(cl.Sources) != 0 {
				t.Errorf("destination: %+v", d)
			}
		case "src":
			if s := cl.Sources["serviceA"]; s.URL.String() != "tcp://:8000" || len(cl.Destinations) != 0 {
				t.Errorf("source: %+v", s)
			}
		}
	}
}

// specRefusals returns the keys refused in errs, and fails the test on any
// other error. The spec's full client example sets every key of an
// endpoint at once, for every url form; this build refuses a key where the
// endpoint's url would ignore it, rather than accept it silently.
func specRefusals(t *testing.T, errs []error) []string {
	t.Helper()
	var keys []string
	for _, err := range errs {
		var e *Error
		switch {
		case !errors.As(err, &e):
			t.Fatalf("unexpected error %v", err)
		case strings.Contains(e.Reason, "applies only to") && strings.Contains(e.Reason, "it would be ignored"):
			keys = append(keys, e.Key)
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	slices.Sort(keys)
	return keys
}

func TestSpecFullClient(t *testing.T) {
	r := specResolver(t, "full-client.toml")
	cl := r.client()
	refused := specRefusals(t, r.errs)
	want := []string{
		"client.destinations.serviceX.cas-file", "client.destinations.serviceX.cert-file", "client.destinations.serviceX.key-file",
		"client.sources.serviceX.cas-file", "client.sources.serviceX.cert-file", "client.sources.serviceX.key-file",
	}
	if !slices.Equal(refused, want) {
		t.Fatalf("refused keys %v, want %v", refused, want)
	}
	if cl.Token != "token-from-file" || cl.Metadata != "home" || cl.ServerAddr != "localhost:19190" || cl.ServerName != "localhost" {
		t.Errorf("client: %+v", cl)
	}
	if cl.StatelessResetKey == nil || cl.StatusAddr != "127.0.0.1:19182" || cl.NatPMP != portmap.ModeSystem || cl.HandshakeIdleTimeout != time.Minute {
		t.Errorf("client: %+v", cl)
	}
	x := cl.Destinations["serviceX"]
	if x.Route != netpath.RouteAny || !reflect.DeepEqual(x.RelayEncryptions, []e2ee.Encryption{e2ee.TLS, e2ee.DHXCP}) ||
		x.DialTimeout != 2*time.Second || x.URL.String() != "tcp://localhost:3000" || x.CAsFile != "/path/to/cas/file" {
		t.Errorf("destinations.serviceX: %+v", x)
	}
	if y := cl.Destinations["serviceY"]; y.Route != netpath.RouteDirect || y.URL.Host != "192.168.1.100:8000" {
		t.Errorf("destinations.serviceY: %+v", y)
	}
	sx := cl.Sources["serviceX"]
	if sx.Route != netpath.RouteRelay || sx.URL.String() != "tcp://:8000" || sx.DialTimeout != 5*time.Second || sx.LBPolicy != balance.Default || sx.LBRetry != balance.Never {
		t.Errorf("sources.serviceX: %+v", sx)
	}
	if sy := cl.Sources["serviceY"]; sy.Route != netpath.RouteDirect || sy.URL.String() != "tcp://:8001" {
		t.Errorf("sources.serviceY: %+v", sy)
	}
}

// TestSpecFullClientURLAlternatives tries each "other options for the url
// field" line of the spec's client example in place of the first one.
func TestSpecFullClientURLAlternatives(t *testing.T) {
	data, err := os.ReadFile("testdata/spec/full-client.toml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	// The first url line of each block is active; the alternatives follow
	// it as comments.
	var alts []int
	for i, l := range lines {
		if strings.HasPrefix(l, "# url = ") {
			alts = append(alts, i)
		}
	}
	if len(alts) != 10 {
		t.Fatalf("expected 10 alternative urls in the spec example, found %d", len(alts))
	}
	sourcesLine := slices.Index(lines, "[client.sources.serviceX] # matches destinations.serviceX")
	if sourcesLine < 0 {
		t.Fatal("no sources.serviceX table in the example")
	}
	for _, i := range alts {
		t.Run(lines[i], func(t *testing.T) {
			variant := slices.Clone(lines)
			// Activate the alternative and comment out the active url of
			// the same table (the closest uncommented url line above).
			variant[i] = strings.TrimPrefix(variant[i], "# ")
			for j := i - 1; j >= 0; j-- {
				if strings.HasPrefix(variant[j], "url = ") {
					variant[j] = "# " + variant[j]
					break
				}
			}
			cfg, err := Parse([]byte(strings.Join(variant, "\n")), "variant.toml")
			if err != nil {
				t.Fatal(err)
			}
			r := newResolver(cfg, nil)
			r.readFile, r.stat = specFS(t).readFile, specFS(t).stat
			r.client()
			// The table of the alternative takes the keys its url
			// applies, and only those.
			table := "client.destinations.serviceX."
			if i > sourcesLine {
				table = "client.sources.serviceX."
			}
			u, _ := url.Parse(strings.Trim(strings.Fields(variant[i])[2], `"`))
			tlsURL := u.Scheme == "tls" || u.Scheme == "https" || u.Scheme == "wss"
			var got []string
			for _, k := range specRefusals(t, r.errs) {
				if rest, ok := strings.CutPrefix(k, table); ok {
					got = append(got, rest)
				}
			}
			var want []string
			if !tlsURL {
				want = append(want, "cas-file", "cert-file", "key-file")
			}
			if u.Scheme == "file" {
				want = append(want, "dial-timeout")
				slices.Sort(want)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s refused %v, want %v", table, got, want)
			}
		})
	}
}

func TestSpecFullClientVerbatimIsInvalidTOML(t *testing.T) {
	_, err := Load("testdata/spec/full-client-verbatim.toml")
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 28 || !strings.Contains(ce.Error(), "client.destinations.serviceX.url") {
		t.Fatalf("expected a duplicate key error on line 28, got %v", err)
	}
}

func TestSpecFullServer(t *testing.T) {
	r := specResolver(t, "full-server.toml")
	s := r.server()
	if err := r.err(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Tokens, []string{"client-token-1"}) || len(s.TokenRestrictions) != 1 {
		t.Errorf("tokens: %+v", s)
	}
	if s.StatusAddr != "127.0.0.1:19180" || s.StoreDir != "path/to/server-store" {
		t.Errorf("server: %+v", s)
	}
	if len(s.Ingress) != 1 || s.Ingress[0].Addr != ":19190" {
		t.Errorf("ingress: %+v", s.Ingress)
	}
	if len(s.RelayIngress) != 1 || !reflect.DeepEqual(s.RelayIngress[0].Hostports, []string{"localhost:19191"}) {
		t.Errorf("relay ingress: %+v", s.RelayIngress)
	}
}

func TestSpecFullControl(t *testing.T) {
	r := specResolver(t, "full-control.toml")
	s := r.control()
	if err := r.err(); err != nil {
		t.Fatal(err)
	}
	// relays-tokens-file names the same one-token file as the example's
	// relay token, which the file wins over the inline list.
	if len(s.ClientsTokens) != 1 || len(s.RelaysTokens) != 1 || len(s.ClientsIngress) != 1 || len(s.RelaysIngress) != 1 {
		t.Errorf("control: %+v", s)
	}
	if s.RelaysIngress[0].Addr != ":19189" || s.StoreDir != "path/to/control-store" {
		t.Errorf("control: %+v", s)
	}
}

func TestSpecFullRelay(t *testing.T) {
	r := specResolver(t, "full-relay.toml")
	s := r.relay()
	if err := r.err(); err != nil {
		t.Fatal(err)
	}
	if s.Token != "token-from-file" || s.ControlAddr != "localhost:19189" || s.ControlName != "localhost" || s.ControlCAs == nil {
		t.Errorf("relay: %+v", s)
	}
	if s.HandshakeTimeout != time.Minute || s.StatusAddr != "127.0.0.1:19181" || s.StoreDir != "path/to/relay-store" {
		t.Errorf("relay: %+v", s)
	}
	if len(s.Ingress) != 1 || !reflect.DeepEqual(s.Ingress[0].Hostports, []string{"localhost:19191"}) {
		t.Errorf("ingress: %+v", s.Ingress)
	}
}

func TestSpecSnippets(t *testing.T) {
	cfg, err := Load("testdata/spec/ip-restrictions.toml", "testdata/spec/logging.toml")
	if err != nil {
		t.Fatal(err)
	}
	ing := cfg.Server.Ingress
	if len(ing) != 1 || fmt.Sprint(ing[0].AllowCIDRs, ing[0].DenyCIDRs) != "[192.0.2.0/24] [198.51.100.0/24]" {
		t.Errorf("ingress: %+v", ing)
	}
	ls, err := cfg.LogSettings()
	if err != nil || ls.Format != LogFormatText || ls.Level.String() != "INFO" {
		t.Errorf("log: %+v %v", ls, err)
	}
}
