package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/testcert"
)

// TestReadmeClientExamples loads every client config example of the
// project's README and of its pages under docs/, so the examples stay
// ones that work.
func TestReadmeClientExamples(t *testing.T) {
	docs := readDocs(t)
	exampleFiles(t, docs)
	tested := 0
	for _, b := range tomlBlocks(docs) {
		body := b.body
		if !strings.Contains(body, "[client") {
			continue
		}
		// Endpoint-only examples go into a client with a token.
		if !strings.Contains(body, "token") {
			body = strings.Replace(body, "[client]\n", "", 1)
			body = "[client]\ntoken = \"t\"\n" + body
		}
		cfg, err := config.Parse([]byte(body), b.name)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if _, err := cfg.ClientSettings(func(string) string { return "" }); err != nil {
			t.Errorf("%s:\n%s\n%v", b.name, body, err)
		}
		tested++
	}
	// The README's two quickstarts have two client files each;
	// docs/configuration.md has the endpoint and load balancing examples.
	if tested < 6 {
		t.Fatalf("found %d client examples in the README and docs/, want the two quickstarts' four and the endpoint and load balancing examples", tested)
	}
}

// TestDocsServerExamples loads every whole server, control server and
// relay config example of the README and docs/ (those that start with
// their table) as the command of that role would.
func TestDocsServerExamples(t *testing.T) {
	docs := readDocs(t)
	exampleFiles(t, docs)
	noEnv := func(string) string { return "" }
	roles := map[string]func(*config.Config) error{
		"[server]\n":  func(c *config.Config) error { _, err := c.ServerSettings(noEnv); return err },
		"[control]\n": func(c *config.Config) error { _, err := c.ControlSettings(noEnv); return err },
		"[relay]\n":   func(c *config.Config) error { _, err := c.RelaySettings(noEnv); return err },
	}
	tested := map[string]int{}
	for _, b := range tomlBlocks(docs) {
		body := b.body
		if _, rest, ok := strings.Cut(body, "\n"); ok && strings.HasPrefix(body, "# ") {
			body = rest // a "# server.toml" caption
		}
		for table, settings := range roles {
			if !strings.HasPrefix(body, table) {
				continue
			}
			cfg, err := config.Parse([]byte(body), b.name)
			if err == nil {
				err = settings(cfg)
			}
			if err != nil {
				t.Errorf("%s:\n%s\n%v", b.name, body, err)
			}
			tested[table]++
		}
	}
	// The two quickstarts' servers, and operations.md's control server
	// and relay.
	if tested["[server]\n"] < 2 || tested["[control]\n"] < 1 || tested["[relay]\n"] < 1 {
		t.Fatalf("found %v server, control and relay examples, want at least 2, 1 and 1", tested)
	}
}

// exampleFiles makes a directory with the files the examples name
// (cert.pem for the server's CA, other PEM files, directories for file
// destinations), as a user would give them, and makes it the test's
// working directory.
func exampleFiles(t *testing.T, docs []document) {
	t.Helper()
	var all strings.Builder
	for _, d := range docs {
		all.WriteString(d.text)
	}
	text := all.String()
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
	for _, m := range regexp.MustCompile(`"([\w.-]+\.pem)"`).FindAllStringSubmatch(text, -1) {
		from := certFile
		if strings.Contains(m[1], "key") {
			from = keyFile
		}
		writeFile(t, dir, m[1], readFileT(t, from))
	}
	for _, m := range regexp.MustCompile(`"file:\./([\w.-]+)"`).FindAllStringSubmatch(text, -1) {
		writeFile(t, dir, m[1]+"/index.html", "hello\n")
	}
}

// tomlBlock is one fenced toml example, named by its file and number.
type tomlBlock struct{ name, body string }

// tomlBlocks returns the toml examples of the documents, in order.
func tomlBlocks(docs []document) []tomlBlock {
	var out []tomlBlock
	for _, d := range docs {
		for i, m := range regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(d.text, -1) {
			out = append(out, tomlBlock{fmt.Sprintf("%s toml block %d", d.name, i+1), m[1]})
		}
	}
	return out
}

// document is one markdown file of the project's documentation.
type document struct{ name, text string }

// readDocs returns the README and every page under docs/, the places
// config examples are written.
func readDocs(t *testing.T) []document {
	t.Helper()
	paths, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var docs []document
	for _, p := range append([]string{"../../README.md"}, paths...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, document{strings.TrimPrefix(p, "../../"), string(b)})
	}
	return docs
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
