package forward

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2pconnet/connet/internal/config"
)

// fileTree makes dir/root with files and dotfiles, and dir/outside with a
// secret that root's symlinks point at.
func fileTree(t *testing.T) (root string) {
	t.Helper()
	dir := t.TempDir()
	root = filepath.Join(dir, "root")
	outside := filepath.Join(dir, "outside")
	for _, p := range []string{filepath.Join(root, "sub"), filepath.Join(root, ".git"), filepath.Join(root, ".well-known"), outside} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{
		filepath.Join(root, "a.txt"):                       "0123456789abcdef",
		filepath.Join(root, "sub", "b.html"):               "<p>hi</p>",
		filepath.Join(root, "data.json"):                   `{"k":1}`,
		filepath.Join(outside, "secret.txt"):               "TOP-SECRET",
		filepath.Join(root, ".env"):                        "DOTFILE-SECRET=1",
		filepath.Join(root, ".git", "config"):              "DOTFILE-SECRET-GIT",
		filepath.Join(root, "sub", ".htpasswd"):            "DOTFILE-SECRET-HT",
		filepath.Join(root, ".well-known", "security.txt"): "Contact: mailto:security@example.com",
		filepath.Join(root, ".well-known", ".hidden"):      "DOTFILE-SECRET-WK",
	} {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside", filepath.Join(root, "linkdir")); err != nil {
		t.Fatal(err)
	}
	// Symlinks that stay inside are served.
	if err := os.Symlink("a.txt", filepath.Join(root, "inner.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub", filepath.Join(root, "innerdir")); err != nil {
		t.Fatal(err)
	}
	return root
}

func fileDest(t *testing.T, raw string) config.DestinationSettings {
	return config.DestinationSettings{Name: "files", URL: mustURL(t, raw)}
}

func TestFileDestination(t *testing.T) {
	root := fileTree(t)
	ft := startDestination(t, fileDest(t, "file://"+root), testOrigin)
	c := frontClient(ft)

	code, body := get(t, c, "http://front/")
	for _, name := range []string{"a.txt", "sub/", "data.json"} {
		if code != 200 || !strings.Contains(body, `href="`+name+`"`) {
			t.Errorf("listing lacks %s: %d %q", name, code, body)
		}
	}
	if code, body := get(t, c, "http://front/inner.txt"); code != 200 || body != "0123456789abcdef" {
		t.Errorf("inner symlink: %d %q", code, body)
	}

	req, _ := http.NewRequest("GET", "http://front/a.txt", nil)
	req.Header.Set("Range", "bytes=2-5")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != "bytes 2-5/16" || string(got) != "2345" {
		t.Errorf("range: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Range"), got)
	}

	for path, want := range map[string]string{"/sub/b.html": "text/html", "/data.json": "application/json", "/a.txt": "text/plain"} {
		resp, err := c.Get("http://front" + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, want) {
			t.Errorf("%s: %d content type %q, want %s", path, resp.StatusCode, ct, want)
		}
	}
}

// rawGet sends path exactly as written (an HTTP client would clean it).
func rawGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: front\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestFileDestinationStaysInRoot(t *testing.T) {
	root := fileTree(t)
	ft := startDestination(t, fileDest(t, "file://"+root), testOrigin)
	for _, path := range []string{
		"/../outside/secret.txt",
		"/%2e%2e/outside/secret.txt",
		"/sub/../../outside/secret.txt",
		"/link.txt",
		"/linkdir/secret.txt",
		"/linkdir/",
	} {
		code, body := rawGet(t, ft.Addr(), path)
		if strings.Contains(body, "TOP-SECRET") || strings.Contains(body, "secret.txt") || (code != 400 && code != 403 && code != 404) {
			t.Errorf("%s: %d %q, want it refused", path, code, body)
		}
	}
}

func TestFileDestinationRelativePath(t *testing.T) {
	root := fileTree(t)
	t.Chdir(filepath.Dir(root))
	ft := startDestination(t, fileDest(t, "file:./root"), testOrigin)
	if code, body := get(t, frontClient(ft), "http://front/sub/b.html"); code != 200 || body != "<p>hi</p>" {
		t.Errorf("got %d %q", code, body)
	}
}

func TestFileDestinationRootMustBeADirectory(t *testing.T) {
	root := fileTree(t)
	for _, p := range []string{filepath.Join(root, "missing"), filepath.Join(root, "a.txt")} {
		if _, err := NewDestination(fileDest(t, "file://"+p), testLogger(t)); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err %v, want one naming the path", p, err)
		}
	}
}

// listing is the names the directory listing at path links to.
func listing(t *testing.T, c *http.Client, url string) []string {
	t.Helper()
	code, body := get(t, c, url)
	if code != http.StatusOK {
		t.Fatalf("listing %s: %d %q", url, code, body)
	}
	var names []string
	for _, line := range strings.Split(body, "\n") {
		if _, rest, ok := strings.Cut(line, `href="`); ok {
			name, _, _ := strings.Cut(rest, `"`)
			names = append(names, name)
		}
	}
	return names
}

// TestFileDestinationHidesDotfilesAndEscapes: dotfiles and symlinks that
// lead outside the root are neither listed nor served; a symlink inside
// the root and /.well-known are.
func TestFileDestinationHidesDotfilesAndEscapes(t *testing.T) {
	root := fileTree(t)
	ft := startDestination(t, fileDest(t, "file://"+root), testOrigin)
	c := frontClient(ft)

	if got, want := strings.Join(listing(t, c, "http://front/"), " "), ".well-known/ a.txt data.json inner.txt innerdir sub/"; got != want {
		t.Errorf("root listing %q, want %q", got, want)
	}
	if got := strings.Join(listing(t, c, "http://front/sub/"), " "); got != "b.html" {
		t.Errorf("sub listing %q, want only b.html", got)
	}
	if got := strings.Join(listing(t, c, "http://front/.well-known/"), " "); got != "security.txt" {
		t.Errorf(".well-known listing %q, want only security.txt", got)
	}
	for _, path := range []string{"/.env", "/%2eenv", "/.git/config", "/.git/", "/sub/.htpasswd", "/.well-known/.hidden", "/link.txt", "/linkdir/secret.txt"} {
		code, body := rawGet(t, ft.Addr(), path)
		if code != http.StatusNotFound || strings.Contains(body, "SECRET") {
			t.Errorf("%s: %d %q, want 404", path, code, body)
		}
	}
	if code, body := get(t, c, "http://front/.well-known/security.txt"); code != 200 || !strings.HasPrefix(body, "Contact:") {
		t.Errorf("/.well-known/security.txt: %d %q", code, body)
	}
	if code, body := get(t, c, "http://front/inner.txt"); code != 200 || body != "0123456789abcdef" {
		t.Errorf("inner symlink: %d %q", code, body)
	}
	if code, body := get(t, c, "http://front/innerdir/b.html"); code != 200 || body != "<p>hi</p>" {
		t.Errorf("inner directory symlink: %d %q", code, body)
	}
	if got := strings.Join(listing(t, c, "http://front/innerdir/"), " "); got != "b.html" {
		t.Errorf("listing through an inner directory symlink %q, want only b.html", got)
	}
}

// TestFileDestinationServeDotfiles: with serve-dotfiles, dotfiles are
// listed and served; symlinks leading outside still are not.
func TestFileDestinationServeDotfiles(t *testing.T) {
	root := fileTree(t)
	d := fileDest(t, "file://"+root)
	d.ServeDotfiles = true
	ft := startDestination(t, d, testOrigin)
	c := frontClient(ft)
	if got, want := strings.Join(listing(t, c, "http://front/"), " "), ".env .git/ .well-known/ a.txt data.json inner.txt innerdir sub/"; got != want {
		t.Errorf("root listing %q, want %q", got, want)
	}
	for path, want := range map[string]string{"/.env": "DOTFILE-SECRET=1", "/.git/config": "DOTFILE-SECRET-GIT", "/sub/.htpasswd": "DOTFILE-SECRET-HT"} {
		if code, body := get(t, c, "http://front"+path); code != 200 || body != want {
			t.Errorf("%s: %d %q, want %q", path, code, body, want)
		}
	}
	if code, body := rawGet(t, ft.Addr(), "/link.txt"); code != http.StatusNotFound || strings.Contains(body, "SECRET") {
		t.Errorf("/link.txt: %d %q, want 404", code, body)
	}
}
