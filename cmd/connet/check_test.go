package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/p2pconnet/connet/internal/config"
)

// checkOutput runs connet check on files as main does and returns what
// it prints and its exit code.
func checkOutput(t *testing.T, files ...string) (string, int) {
	t.Helper()
	out, err := run(t, append([]string{"check"}, files...)...)
	var stderr bytes.Buffer
	code := exitCode(context.Background(), err, &stderr)
	return out + stderr.String(), code
}

// TestCheckReportsEveryMistakeAtOnce: an unknown key, a bad value, a bad
// scheme, a conflict and files that do not exist come up in one run, one
// line each naming the file, the key and the reason.
func TestCheckReportsEveryMistakeAtOnce(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	path := writeFile(t, dir, "client.toml", `
[client]
token = "t"
bogus = 1

[client.destinations.web]
url = "ftp://localhost:8080"
dial-timeout = "2x"

[client.destinations.secure]
url = "tls://localhost:8443"
cas-file = "missing-ca.pem"
cert-file = "missing-cert.pem"
key-file = "missing-key.pem"

[client.destinations.site]
url = "file:./missing-dir"

[client.sources.app]
url = "https://127.0.0.1:8443"
cert-file = "missing-cert.pem"
key-file = "missing-key.pem"
lb-policy = "fastest"

[relay]
token = "r"
handshake-timeout = "5s"
handshake-idle-timeout = "6s"
`)
	out, code := checkOutput(t, path)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	want := []string{
		"client.bogus: unknown key",
		`client.destinations.web.url: invalid URL "ftp://localhost:8080": unsupported scheme "ftp"`,
		`client.destinations.web.dial-timeout: invalid duration "2x"`,
		"client.destinations.secure.cas-file: cannot read file: open missing-ca.pem: no such file or directory",
		"client.destinations.secure.cert-file: cannot read file: open missing-cert.pem",
		"client.destinations.secure.key-file: cannot read file: open missing-key.pem",
		`client.destinations.site.url: cannot serve "./missing-dir"`,
		"client.sources.app.cert-file: cannot read file: open missing-cert.pem",
		"client.sources.app.key-file: cannot read file: open missing-key.pem",
		`client.sources.app.lb-policy: invalid value "fastest"`,
		"relay.handshake-idle-timeout: set only one of handshake-timeout and handshake-idle-timeout",
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(want) {
		t.Errorf("%d lines, want %d, one per mistake:\n%s", len(lines), len(want), out)
	}
	for _, w := range want {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, "connet: config: "+path+": "+w) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line %q:\n%s", "connet: config: "+path+": "+w, out)
		}
	}
}

// TestCheckAndStartAgreeOnFiles: what check reports of a file, starting
// the client reports too, before it connects anywhere.
func TestCheckAndStartAgreeOnFiles(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "client.toml", `
[client]
token = "t"
[client.destinations.secure]
url = "tls://localhost:8443"
cas-file = "`+dir+`/missing-ca.pem"
`)
	_, checkErr := run(t, "check", path)
	_, startErr := loadClient(t, "--config", path)
	for name, err := range map[string]error{"check": checkErr, "start": startErr} {
		errs := config.Errors(err)
		if len(errs) != 1 || errs[0].Key != "client.destinations.secure.cas-file" || !strings.Contains(errs[0].Error(), "missing-ca.pem: no such file") {
			t.Errorf("%s: %v, want the missing cas-file", name, err)
		}
	}
}

// TestCheckShowsASyntaxErrorWhereItIs: a malformed file's error names the
// line and the column, then shows the line with a marker under the column.
func TestCheckShowsASyntaxErrorWhereItIs(t *testing.T) {
	path := writeFile(t, t.TempDir(), "broken.toml", "[client]\ntoken = \"t\"\nserver-addr = localhost:19190\n")
	out, code := checkOutput(t, path)
	want := "connet: config: " + path + `:3:15: invalid TOML: expected value but found "localhost" instead` + "\n" +
		"    server-addr = localhost:19190\n" +
		"                  ^\n"
	if code != 1 || out != want {
		t.Errorf("exit %d, printed\n%s\nwant\n%s", code, out, want)
	}
}
