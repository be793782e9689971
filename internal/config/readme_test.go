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
	// The examples name cert.pem for the server's CA; give them one.
	dir := t.TempDir()
	cert, err := testcert.New("localhost")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cert.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)

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
