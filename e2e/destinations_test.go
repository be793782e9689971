package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/natlab"
	"github.com/p2pconnet/connet/internal/testprog"
)

// bigBodySize is streamed through an http destination and checked by digest.
const bigBodySize = 32 << 20

// bigBody is a deterministic stream generated as read, never held whole.
func bigBody() io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{7}), bigBodySize)
}

// TestDestinations runs the destination kinds through the real binary: a
// client on A exposes an http destination with a path, a file destination,
// and tcp destinations sending PROXY v1/v2 headers to nginx; the client on B
// has a tcp source for each, and curl on B is the user.
func TestDestinations(t *testing.T) {
	d := newDeployment(t, natlab.Public)

	// The http destination's service echoes what it saw of the request.
	ln, err := d.lab.A.ListenTCP("127.0.0.1:" + servicePort)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/base/big" {
			_, _ = io.Copy(w, bigBody())
			return
		}
		fmt.Fprintf(w, "path=%s host=%s xff=%s\n", r.URL.Path, r.Host, r.Header.Get("X-Forwarded-For"))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	files := t.TempDir()
	if err := os.WriteFile(filepath.Join(files, "a.txt"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}

	nginxPort := "3001"
	accessLog, nginxOK := startLabNginx(t, d.lab.A, nginxPort)

	d.startServer()
	d.write("destination.toml", d.clientConfig("token-a", fmt.Sprintf(`
[client.destinations.web]
url = "http://127.0.0.1:%s/base"
dial-timeout = "5s"
[client.destinations.files]
url = "file://%s"
[client.destinations.ng1]
url = "tcp://127.0.0.1:%s"
proxy-proto-version = "v1"
[client.destinations.ng2]
url = "tcp://127.0.0.1:%[3]s"
proxy-proto-version = "v2"
`, servicePort, files, nginxPort)))
	d.startClient(d.lab.A, "destination", d.path("destination.toml"))
	d.write("source.toml", d.clientConfig("token-b", `
[client.sources.web]
url = "tcp://127.0.0.1:8000"
[client.sources.files]
url = "tcp://127.0.0.1:8001"
[client.sources.ng1]
url = "tcp://127.0.0.1:8002"
[client.sources.ng2]
url = "tcp://127.0.0.1:8003"
`))
	d.startClient(d.lab.B, "source", d.path("source.toml"))

	curl := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return d.lab.B.Run(ctx, append([]string{"curl", "-sS", "--max-time", "50"}, args...)...)
	}
	// Wait until the tunnel carries a request, for at most fetchLimit.
	var lastErr error
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		out, err := curl("http://127.0.0.1:8000/ready")
		if err == nil && strings.HasPrefix(out, "path=/base/ready") {
			break
		}
		lastErr = fmt.Errorf("%v: %s", err, out)
		if time.Since(start) > fetchLimit {
			t.Fatalf("no response through the http destination within %v: %v", fetchLimit, lastErr)
		}
	}

	t.Run("http path rewrite, forwarded client, keep-alive", func(t *testing.T) {
		out, err := curl("-v", "http://127.0.0.1:8000/x", "http://127.0.0.1:8000/y")
		if err != nil {
			t.Fatal(err)
		}
		// xff is curl's address on B as the source saw it: the origin,
		// not the destination client's end of the tunnel.
		for _, want := range []string{
			"path=/base/x host=127.0.0.1:" + servicePort + " xff=127.0.0.1\n",
			"path=/base/y host=127.0.0.1:" + servicePort + " xff=127.0.0.1\n",
			"Re-using existing connection",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("curl output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("http large streamed body", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "big")
		if out, err := curl("-o", file, "http://127.0.0.1:8000/big"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		got, want := sha256.New(), sha256.New()
		n, err := io.Copy(got, f)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(want, bigBody())
		if n != bigBodySize || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
			t.Errorf("got %d bytes, digest equal: %v", n, bytes.Equal(got.Sum(nil), want.Sum(nil)))
		}
	})

	t.Run("file range", func(t *testing.T) {
		out, err := curl("-r", "2-5", "-w", " %{http_code}", "http://127.0.0.1:8001/a.txt")
		if err != nil || out != "2345 206" {
			t.Errorf("got %q, %v; want the range and 206", out, err)
		}
		out, err = curl("http://127.0.0.1:8001/")
		if err != nil || !strings.Contains(out, `href="a.txt"`) {
			t.Errorf("listing: %q, %v", out, err)
		}
	})

	for i, v := range []string{"v1", "v2"} {
		t.Run("proxy protocol "+v, func(t *testing.T) {
			if !nginxOK {
				t.Skip("nginx not installed")
			}
			// curl's own port, so the log line proves the origin was passed.
			localPort := fmt.Sprint(40100 + i)
			out, err := curl("--local-port", localPort, fmt.Sprintf("http://127.0.0.1:%d/%s", 8002+i, v))
			want := "pp=127.0.0.1:" + localPort
			if err != nil || !strings.Contains(out, want) {
				t.Fatalf("got %q, %v; want %q", out, err, want)
			}
			line := fmt.Sprintf(`127.0.0.1:%s "GET /%s HTTP/1.1" 200`, localPort, v)
			var log []byte
			for range 100 {
				log, _ = os.ReadFile(accessLog)
				if bytes.Contains(log, []byte(line)) {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Errorf("nginx access log lacks %q:\n%s", line, log)
		})
	}
}

// startLabNginx runs nginx on h with a PROXY protocol listener on port,
// logging the client address the header carries. It reports false when
// nginx is missing (outside CI, which must have it).
func startLabNginx(t *testing.T, h *natlab.Host, port string) (accessLog string, ok bool) {
	t.Helper()
	nginx, ok := testprog.Find(t, "nginx", "nginx-light")
	if !ok {
		return "", false
	}
	dir := t.TempDir()
	accessLog = filepath.Join(dir, "access.log")
	args, err := testprog.NginxProxyProto(dir, "127.0.0.1:"+port, accessLog)
	if err != nil {
		t.Fatal(err)
	}
	h.StartCmd(t, "nginx", h.Command(append([]string{nginx}, args...)...))
	return accessLog, true
}
