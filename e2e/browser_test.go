package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html"
	"html/template"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
	"github.com/p2pconnet/connet/internal/testcert"
)

// Addresses on B's loopback for the browser test: the https source serving
// the site, the wss source in front of the echo service, and a plain HTTPS
// server giving a page from an origin the wss source does not allow.
const (
	siteAddr    = "127.0.0.1:8443"
	wsAddr      = "127.0.0.1:8444"
	foreignAddr = "127.0.0.1:8445"
)

// chromiumLimit bounds one headless run; the page gives up by itself
// earlier (pageLimit), and chromium's --timeout dumps the DOM as it is
// between the two.
const (
	pageLimit     = 15 * time.Second
	chromiumDump  = 20 * time.Second
	chromiumLimit = 60 * time.Second
)

// TestBrowser loads a page through an https source from a file destination
// in headless Chromium on B. The page fetches a second file through the
// same source and echoes a message over a WebSocket through a wss source to
// a TCP echo service on A; the dumped DOM must show both exactly. A page
// from an origin the wss source does not list must fail to connect, and
// the echo service must see no connection from it.
func TestBrowser(t *testing.T) {
	chromium := requireChromium(t)
	d := newDeployment(t, natlab.Public)

	// The certificate of B's https and wss sources and of the foreign page.
	certDir := t.TempDir()
	webCert, err := testcert.New("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := webCert.WriteFiles(certDir)
	if err != nil {
		t.Fatal(err)
	}

	// A's echo service counts the connections it accepts.
	var echoConns atomic.Int64
	serveTCP(t, d.lab.A, "127.0.0.1:"+servicePort, func(c net.Conn) {
		echoConns.Add(1)
		_ = c.SetDeadline(time.Now().Add(chromiumLimit))
		_, _ = io.Copy(c, c)
	})

	// A's site: the page and the file it fetches.
	dataText := "data-" + randomHex(t, 8)
	message := "hello over wss " + randomHex(t, 8)
	siteDir := t.TempDir()
	writePage(t, filepath.Join(siteDir, "index.html"), pageConfig{Data: true, WS: "wss://" + wsAddr + "/", Message: message})
	if err := os.WriteFile(filepath.Join(siteDir, "data.txt"), []byte(dataText), 0o644); err != nil {
		t.Fatal(err)
	}

	d.startServer()
	d.write("destination.toml", d.clientConfig("token-a", fmt.Sprintf(`
[client.destinations.site]
url = "file://%s"
[client.destinations.echo]
url = "tcp://127.0.0.1:%s"
`, siteDir, servicePort)))
	dst := d.startClient(d.lab.A, "destination", d.path("destination.toml"))
	d.write("source.toml", d.clientConfig("token-b", fmt.Sprintf(`
[client.sources.site]
url = "https://%[1]s"
cert-file = %[3]q
key-file = %[4]q
[client.sources.echo]
url = "wss://%[2]s"
cert-file = %[3]q
key-file = %[4]q
allowed-origins = ["https://%[1]s"]
`, siteAddr, wsAddr, certFile, keyFile)))
	src := d.startClient(d.lab.B, "source", d.path("source.toml"))

	// Wait until the site answers through the tunnel and the echo source
	// has a path to its destination, so the browser meets a ready tunnel.
	if err := waitHTTPS(d.lab.B, webCert.Pool, "https://"+siteAddr+"/data.txt", dataText, fetchLimit, dst, src); err != nil {
		t.Fatal(err)
	}
	if _, _, err := waitStatus(d.lab.B, pathLimit, func(st connet.ClientStatus) bool {
		return sourceHasPath(st, "site") && sourceHasPath(st, "echo")
	}); err != nil {
		t.Fatal(err)
	}

	b := &browser{t: t, bin: chromium, host: d.lab.B, spki: spkiHash(t, webCert)}

	before := echoConns.Load()
	start := time.Now()
	dom := b.dumpDOM("site", "https://"+siteAddr+"/index.html")
	siteTook := time.Since(start)
	got := parseResults(dom)
	if got["data"] != dataText || got["echo"] != message {
		t.Fatalf("page through the tunnel shows data=%q echo=%q, want data=%q echo=%q; DOM:\n%s",
			got["data"], got["echo"], dataText, message, dom)
	}
	if n := echoConns.Load() - before; n < 1 {
		t.Fatalf("the page echoed its message but the echo service on A accepted %d connections", n)
	}

	// A page from another origin: served by a plain HTTPS server on B.
	foreign := serveForeignPage(t, d.lab.B, webCert.TLS, pageConfig{WS: "wss://" + wsAddr + "/", Message: message})
	before = echoConns.Load()
	start = time.Now()
	dom = b.dumpDOM("foreign", foreign)
	foreignTook := time.Since(start)
	got = parseResults(dom)
	if e := got["echo"]; !strings.HasPrefix(e, "error") && !strings.HasPrefix(e, "closed") {
		t.Fatalf("page from origin https://%s shows echo=%q, want a refused WebSocket (error/closed); DOM:\n%s", foreignAddr, e, dom)
	}
	// A late dial would still be counted.
	time.Sleep(time.Second)
	if n := echoConns.Load() - before; n != 0 {
		t.Fatalf("a page from a refused origin got %d connections to the echo service on A", n)
	}
	t.Logf("MEASURE browser site_ms=%d foreign_ms=%d foreign_echo=%q", siteTook.Milliseconds(), foreignTook.Milliseconds(), got["echo"])
}

// requireChromium returns the path of Debian's chromium, or skips the test
// without it (fails under CI=true, so CI cannot skip silently).
func requireChromium(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err == nil {
		return bin
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("chromium not found under CI=true (apt-get install chromium): %v", err)
	}
	t.Skipf("chromium not found (apt-get install chromium): %v", err)
	return ""
}

// browser runs headless Chromium in a lab host's namespace.
type browser struct {
	t    *testing.T
	bin  string
	host *natlab.Host
	// spki is the base64 SHA-256 of the test certificate's public key,
	// which Chromium accepts in place of a trusted chain.
	spki string
}

// dumpDOM loads url in a fresh profile and returns the DOM after the
// page's load event. Chromium's --dump-dom prints the DOM when the load
// event fires (--virtual-time-budget does not wait for WebSocket traffic),
// so the page holds its load event back until its results are in (see
// pageTemplate); --timeout dumps whatever is there if that never happens.
func (b *browser) dumpDOM(name, url string) string {
	t := b.t
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "dom.html")
	argv := []string{
		// Chromium writes the DOM to stdout and its noise to stderr: the
		// DOM goes to a file, the noise to the process log.
		"sh", "-c", `out=$1; shift; exec "$@" >"$out"`, "sh", out,
		b.bin,
		"--headless",
		"--no-sandbox", // the tests run as root
		"--disable-gpu",
		"--disable-dev-shm-usage",
		"--disable-quic",
		"--no-first-run",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--user-data-dir=" + filepath.Join(dir, "profile"),
		// Trust exactly the test certificate; honoured only together with
		// --user-data-dir.
		"--ignore-certificate-errors-spki-list=" + b.spki,
		"--dump-dom",
		fmt.Sprintf("--timeout=%d", chromiumDump.Milliseconds()),
		url,
	}
	cmd := b.host.Command(argv...)
	cmd.Env = append(os.Environ(),
		"HOME="+dir,
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
	)
	p := b.host.StartCmd(t, "chromium-"+name, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), chromiumLimit)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		_ = p.Stop()
		t.Fatalf("chromium on %s, %s: %v", b.host.Name, url, err)
	}
	dom, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(dom) == 0 {
		t.Fatalf("chromium on %s dumped no DOM for %s (see its output below)", b.host.Name, url)
	}
	return string(dom)
}

// pageConfig is what the test page does: fetch /data.txt (Data) and echo
// Message over a WebSocket to WS.
type pageConfig struct {
	Data    bool
	WS      string
	Message string
}

// pageTemplate writes its results into <pre id="data"> and <pre id="echo">
// ("pending" until then). The echo result is the echoed text, or how the
// WebSocket failed: "error, closed CODE", "closed CODE" or "timeout".
//
// Chromium dumps the DOM on the load event, which waits for every frame:
// the page keeps an iframe's document open (document.open without close)
// until its results are in.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>connet browser test</title></head>
<body>
{{if .Data}}<pre id="data">pending</pre>
{{end}}<pre id="echo">pending</pre>
<script>
"use strict";
const hold = document.body.appendChild(document.createElement("iframe"));
hold.contentDocument.open();
const pending = new Set(["echo"{{if .Data}}, "data"{{end}}]);
function result(id, text) {
  if (!pending.delete(id)) return;
  document.getElementById(id).textContent = text;
  if (pending.size === 0) hold.contentDocument.close();
}
setTimeout(() => { for (const id of [...pending]) result(id, "timeout"); }, {{.LimitMs}});
{{if .Data}}
fetch("/data.txt")
  .then(r => r.ok ? r.text() : "status " + r.status)
  .then(text => result("data", text), err => result("data", "error: " + err));
{{end}}
const want = new TextEncoder().encode({{.Message}});
const got = new Uint8Array(want.length);
let n = 0, failed = false;
const ws = new WebSocket({{.WS}});
ws.binaryType = "arraybuffer";
ws.onopen = () => ws.send(want);
ws.onmessage = ev => {
  if (!(ev.data instanceof ArrayBuffer)) {
    result("echo", "text message: " + ev.data);
  } else {
    const chunk = new Uint8Array(ev.data);
    got.set(chunk.subarray(0, want.length - n), n);
    n += chunk.length;
    if (n < want.length) return;
    result("echo", n === want.length ? new TextDecoder().decode(got) : "too long: " + n + " bytes");
  }
  ws.close();
};
ws.onerror = () => { failed = true; };
ws.onclose = ev => result("echo", (failed ? "error, " : "") + "closed " + ev.code);
</script>
</body></html>
`))

func renderPage(t *testing.T, pc pageConfig) []byte {
	t.Helper()
	var sb strings.Builder
	err := pageTemplate.Execute(&sb, struct {
		pageConfig
		LimitMs int64
	}{pc, pageLimit.Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	return []byte(sb.String())
}

func writePage(t *testing.T, path string, pc pageConfig) {
	t.Helper()
	if err := os.WriteFile(path, renderPage(t, pc), 0o644); err != nil {
		t.Fatal(err)
	}
}

var resultRE = regexp.MustCompile(`<pre id="(data|echo)">([^<]*)</pre>`)

// parseResults returns the text of the page's result elements.
func parseResults(dom string) map[string]string {
	out := map[string]string{}
	for _, m := range resultRE.FindAllStringSubmatch(dom, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

// serveForeignPage serves the page over HTTPS at foreignAddr in h's
// namespace, an origin the wss source does not allow, and returns its URL.
func serveForeignPage(t *testing.T, h *natlab.Host, cert tls.Certificate, pc pageConfig) string {
	t.Helper()
	ln, err := h.ListenTCP(foreignAddr)
	if err != nil {
		t.Fatal(err)
	}
	page := renderPage(t, pc)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(page)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + foreignAddr + "/"
}

// waitHTTPS fetches url from h, trusting pool, until it returns want, for
// at most limit; it gives up early if one of procs exits.
func waitHTTPS(h *natlab.Host, pool *x509.CertPool, url, want string, limit time.Duration, procs ...*natlab.Proc) error {
	client := h.HTTPClient()
	client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool}
	defer client.CloseIdleConnections()
	start := time.Now()
	var lastErr error
	for time.Since(start) < limit {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		body, err := get(ctx, client, url)
		cancel()
		if err == nil && string(body) == want {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("got %.200q, want %q", body, want)
		}
		lastErr = err
		for _, p := range procs {
			select {
			case <-p.Exited():
				return fmt.Errorf("GET %s from %s: %s exited (last: %w)", url, h.Name, p.Name, lastErr)
			default:
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("GET %s from %s: no correct response within %v: %w", url, h.Name, limit, lastErr)
}

func get(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %.200q", resp.Status, body)
	}
	return body, err
}

// sourceHasPath tells whether st's source name has a peer with a live path.
func sourceHasPath(st connet.ClientStatus, name string) bool {
	for _, s := range st.Sources {
		if s.Name != name {
			continue
		}
		for _, p := range s.Peers {
			if len(p.Paths) > 0 {
				return true
			}
		}
	}
	return false
}

// spkiHash is the form --ignore-certificate-errors-spki-list takes: base64
// of the SHA-256 of the certificate's SubjectPublicKeyInfo.
func spkiHash(t *testing.T, c *testcert.Cert) string {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
