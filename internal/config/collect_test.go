package config_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/p2pconnet/connet/internal/config"
)

// TestWrongKeysDoNotHideOtherMistakes: a file with an unknown key and a
// value of the wrong type still loads its other keys, so their mistakes
// (a bad scheme, a missing certificate) come up in the same run.
func TestWrongKeysDoNotHideOtherMistakes(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "client.toml", `
[client]
token = "t"
bogus = 1
metadata = 5

[client.destinations.web]
url = "ftp://localhost:8080"
dial-timeout = "2x"

[client.destinations.secure]
url = "tls://localhost:8443"
cas-file = "/nonexistent/ca.pem"
`)
	cfg, err := config.Load(path)
	wantErrors(t, err,
		wantErr{path, "client.bogus", "unknown key"},
		wantErr{path, "client.metadata", "expected string, got integer"},
	)
	if cfg == nil {
		t.Fatal("Load dropped the whole file for two wrong keys")
	}
	if cfg.Client.Token != "t" || cfg.Client.Metadata != "" {
		t.Errorf("kept token %q and metadata %q, want the token and no metadata", cfg.Client.Token, cfg.Client.Metadata)
	}
	_, err = cfg.ClientSettings(nil)
	wantErrors(t, err,
		wantErr{path, "client.destinations.web.url", `unsupported scheme "ftp"`},
		wantErr{path, "client.destinations.web.dial-timeout", `invalid duration "2x"`},
		wantErr{path, "client.destinations.secure.cas-file", "cannot read file: open /nonexistent/ca.pem: no such file"},
	)
}

// TestArrayWithABadElementIsDropped: a bad element drops its whole array,
// so that the positions of the others (token restrictions pair with
// tokens by position) never shift.
func TestArrayWithABadElementIsDropped(t *testing.T) {
	path := writeFile(t, t.TempDir(), "server.toml", "[server]\ntokens = [\"a\", 2, \"c\"]\n[[server.ingress]]\naddr = \":1\"\ncert = \"x\"\n")
	cfg, err := config.Load(path)
	wantErrors(t, err,
		wantErr{path, "server.tokens[1]", "expected string, got integer"},
		wantErr{path, "server.ingress[0].cert", "unknown key"},
	)
	if cfg == nil || cfg.Server.Tokens != nil {
		t.Fatalf("config %+v: want it loaded without the tokens", cfg)
	}
	if len(cfg.Server.Ingress) != 1 || cfg.Server.Ingress[0].Addr != ":1" {
		t.Errorf("ingress %+v: want the table without its unknown key", cfg.Server.Ingress)
	}
}

// TestSyntaxErrorExcerpt: a syntax error carries the line and the column,
// and its excerpt shows the line with a marker under the column.
func TestSyntaxErrorExcerpt(t *testing.T) {
	for _, tt := range []struct {
		name, content string
		line, column  int
		excerpt       string
	}{
		{
			name:    "unquoted string",
			content: "[client]\ntoken = \"t\"\nserver-addr = localhost:19190\n",
			line:    3, column: 15,
			excerpt: "    server-addr = localhost:19190\n                  ^",
		},
		{
			// A tab stays a tab under it, whatever the terminal makes of it.
			name:    "tab before the column",
			content: "[client]\n\ttoken = = 1\n",
			line:    2, column: 10,
			excerpt: "    \ttoken = = 1\n    \t        ^",
		},
		{
			// A control character in a broken file is not sent to the
			// terminal.
			name:    "control character",
			content: "[client]\ntoken = \"a\x1b[2Jb\"\n",
			line:    2, column: 10,
			excerpt: "    token = \"a\uFFFD[2Jb\"\n             ^",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "bad.toml", tt.content)
			_, err := config.Load(path)
			e := singleError(t, err)
			if e.Line != tt.line || e.Column != tt.column {
				t.Errorf("at %d:%d, want %d:%d (%v)", e.Line, e.Column, tt.line, tt.column, err)
			}
			if want := path + ":" + strconv.Itoa(tt.line) + ":" + strconv.Itoa(tt.column) + ": invalid TOML: "; !strings.HasPrefix(e.Error(), want) {
				t.Errorf("error %q does not start with %q", e.Error(), want)
			}
			if strings.Contains(e.Error(), "\n") {
				t.Errorf("error %q spans lines", e.Error())
			}
			if got := e.Excerpt(); got != tt.excerpt {
				t.Errorf("excerpt\n%s\nwant\n%s", got, tt.excerpt)
			}
		})
	}
}

// TestExcerptOfALongLine shows a window around the column, not megabytes.
func TestExcerptOfALongLine(t *testing.T) {
	long := "token = \"" + strings.Repeat("x", 500) + "\" " + strings.Repeat("y", 500) + "\n"
	path := writeFile(t, t.TempDir(), "long.toml", "[client]\n"+long)
	_, err := config.Load(path)
	e := singleError(t, err)
	lines := strings.Split(e.Excerpt(), "\n")
	if len(lines) != 2 || len(lines[0]) > 200 || !strings.HasPrefix(lines[0], "    ...") || !strings.HasSuffix(lines[0], "...") {
		t.Fatalf("excerpt of a long line:\n%s", e.Excerpt())
	}
	// The marker stands where the error is: the toml package places it
	// on the space before the first y.
	if col := strings.Index(lines[1], "^"); col < 0 || lines[0][col:col+2] != " y" {
		t.Errorf("marker not under the error:\n%s", e.Excerpt())
	}
}

// TestExcerptOnlyForSyntaxErrors: other errors are about a key, not a line.
func TestExcerptOnlyForSyntaxErrors(t *testing.T) {
	path := writeFile(t, t.TempDir(), "c.toml", "bogus = 1\n")
	_, err := config.Load(path)
	if x := singleError(t, err).Excerpt(); x != "" {
		t.Errorf("excerpt %q for an unknown key", x)
	}
}
