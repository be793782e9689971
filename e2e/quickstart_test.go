package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
)

// TestReadmeQuickstartOneHost follows the README's one-machine quickstart
// as written: its certificate command, its three files, its commands in
// their terminals (python3's file server as the service) and its curl
// lines, all in one network namespace so that its fixed ports are free.
// Only the build step is replaced, by the binary under test.
func TestReadmeQuickstartOneHost(t *testing.T) {
	natlab.Require(t)
	section := readmeSection(t, "## Quickstart on one machine")
	files := tomlFiles(t, section)
	blocks := codeBlocks(section, "sh")
	if len(blocks) != 3 {
		t.Fatalf("want 3 sh blocks (setup, terminals, checks) in the quickstart, found %d", len(blocks))
	}
	setup, terminals, checks := shLines(blocks[0]), shLines(blocks[1]), shLines(blocks[2])

	dir := t.TempDir()
	// The setup's build step makes ./connet; the binary under test stands in.
	if !strings.Contains(setup[0], "go build -o ~/connet-try/connet ./cmd/connet") {
		t.Fatalf("setup no longer builds ~/connet-try/connet: %q", setup[0])
	}
	copyFile(t, connetBin, filepath.Join(dir, "connet"), 0o755)
	for _, line := range setup[1:] {
		cmd := exec.Command("bash", "-c", line)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
	}
	for _, name := range []string{"cert.pem", "key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("the certificate step did not write %s: %v", name, err)
		}
	}
	for _, name := range []string{"server.toml", "destination.toml", "source.toml"} {
		body, ok := files[name]
		if !ok {
			t.Fatalf("the quickstart has no %s block", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	lab := natlab.New(t, natlab.Public)
	h := lab.A
	if len(terminals) != 4 {
		t.Fatalf("want 4 terminal commands (server, destination, source, service), found %q", terminals)
	}
	var procs []*natlab.Proc
	for i, line := range terminals {
		cmd := h.Command("bash", "-c", "exec "+line)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CONNET_CACHE_DIR="+filepath.Join(dir, fmt.Sprintf("cache-%d", i)))
		procs = append(procs, h.StartCmd(t, fmt.Sprintf("terminal-%d", i+1), cmd))
	}
	// Every terminal's command keeps running: one that ends (a port taken
	// twice, a config error) fails the test at once.
	running := func() error {
		for i, p := range procs {
			select {
			case <-p.Exited():
				return fmt.Errorf("%q (terminal %d) ended: %s", terminals[i], i+1, p.Output())
			default:
			}
		}
		return nil
	}

	// The first check fetches through the tunnel: python3 serves the
	// directory, whose listing names the config files.
	if len(checks) != 2 || !strings.HasPrefix(checks[0], "curl http://127.0.0.1:8000/") || !strings.HasPrefix(checks[1], "curl -s 127.0.0.1:19183") {
		t.Fatalf("checks changed: %q", checks)
	}
	out, err := retryRun(h, checks[0], 20*time.Second, running, func(out string) bool { return strings.Contains(out, "destination.toml") })
	if err != nil {
		t.Fatalf("fetching through the source: %v\n%s", err, out)
	}

	// The second reads the source's status: the peer is reached directly.
	var st connet.ClientStatus
	out, err = retryRun(h, checks[1], 20*time.Second, running, func(out string) bool {
		st = connet.ClientStatus{}
		return json.Unmarshal([]byte(out), &st) == nil && hasDirect(st)
	})
	if err != nil {
		t.Fatalf("no direct path in the source's status: %v\n%s", err, out)
	}
	t.Logf("one-machine quickstart: fetched the listing through the source; paths %+v", sourcePaths(st))
}

// readmeSection returns the README from the heading to the next "## ".
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README has no %q", heading)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// codeBlocks returns the bodies of the fenced blocks of a language.
func codeBlocks(text, lang string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?s)```"+lang+"\n(.*?)```").FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// tomlFiles maps each toml block's file name (its first line, "# NAME") to
// the block.
func tomlFiles(t *testing.T, text string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, b := range codeBlocks(text, "toml") {
		first, _, _ := strings.Cut(b, "\n")
		name, ok := strings.CutPrefix(first, "# ")
		if !ok {
			t.Fatalf("toml block without a file name: %q", first)
		}
		files[name] = b
	}
	return files
}

// shLines returns the non-empty lines of a shell block.
func shLines(block string) []string {
	var out []string
	for _, l := range strings.Split(block, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// retryRun runs a shell line in h until ok accepts its output, for at most
// limit, and gives up as soon as alive reports an error.
func retryRun(h *natlab.Host, line string, limit time.Duration, alive func() error, ok func(string) bool) (string, error) {
	start := time.Now()
	var out string
	var err error
	for time.Since(start) < limit {
		if err := alive(); err != nil {
			return out, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err = h.Run(ctx, "bash", "-c", line)
		cancel()
		if err == nil && ok(out) {
			return out, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err == nil {
		err = fmt.Errorf("output not as expected after %v", limit)
	}
	return out, err
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}
