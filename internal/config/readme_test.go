package config_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/testcert"
)

// TestReadmeClientExamples loads every client config example of the
// project's README, so the examples stay ones that work.
func TestReadmeClientExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// The examples name cert.pem for the server's CA, and other PEM files
	// and directories for endpoints; give them all, as a user would.
	dir := t.TempDir()
	cert, err := testcert.New("localhost")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := cert.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, m := range regexp.MustCompile(`"([\w.-]+\.pem)"`).FindAllStringSubmatch(string(readme), -1) {
		from := certFile
		if strings.Contains(m[1], "key") {
			from = keyFile
		}
		writeFile(t, dir, m[1], readFileT(t, from))
	}
	for _, m := range regexp.MustCompile(`"file:\./([\w.-]+)"`).FindAllStringSubmatch(string(readme), -1) {
		writeFile(t, dir, m[1]+"/index.html", "hello\n")
	}

	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	tested := 0
	for i, b := range blocks {
		body := b[1]
		if !strings.Contains(body, "[client") {
			continue
		}
		// Endpoint-only examples go into a client with a token.
		if !strings.Contains(body, "token") {
			body = strings.Replace(body, "[client]\n", "", 1)
			body = "[client]\ntoken = \"t\"\n" + body
		}
		name := fmt.Sprintf("README toml block %d", i+1)
		cfg, err := config.Parse([]byte(body), name)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if _, err := cfg.ClientSettings(func(string) string { return "" }); err != nil {
			t.Errorf("%s:\n%s\n%v", name, body, err)
		}
		tested++
	}
	if tested < 4 {
		t.Fatalf("found %d client examples in the README, want the quickstart's two and the endpoint and load balancing examples", tested)
	}
}

// TestReadmeRelayAdvertising checks what the README's section on the
// server's relay says: without [[server.relay-ingress]] the relay listens
// on :19191 and is advertised as localhost:19191, and its example's
// hostports entry without a port gets the port of addr.
func TestReadmeRelayAdvertising(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## The server's relay, and advertising it\n")
	if !ok {
		t.Fatal("README has no section on the server's relay")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) != 1 {
		t.Fatalf("want one toml example in the relay section, found %d", len(blocks))
	}

	dir := t.TempDir()
	cert := writeCert(t, dir, "server")
	base := fmt.Sprintf("[server]\ntokens = [\"t\"]\n[[server.ingress]]\ncert-file = %q\nkey-file = %q\n", cert.Cert, cert.Key)
	for _, tc := range []struct {
		name, extra      string
		addr, advertised string
	}{
		{"default", "", ":19191", "localhost:19191"},
		{"README example", blocks[0][1], ":19191", "relay.example.com:19191"},
	} {
		cfg := load(t, dir, "server.toml", base+tc.extra)
		s, err := cfg.ServerSettings(envMap(nil))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(s.RelayIngress) != 1 || s.RelayIngress[0].Addr != tc.addr ||
			strings.Join(s.RelayIngress[0].Hostports, ",") != tc.advertised {
			t.Errorf("%s: relay ingress %+v, want %s advertised as %s", tc.name, s.RelayIngress, tc.addr, tc.advertised)
		}
	}
}
