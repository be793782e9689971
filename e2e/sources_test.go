package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/natlab"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/testprog"
)

// TestSourceKinds runs a destination client on A in front of an HTTP
// service and a TCP echo service, and on B a client with one source of
// each listening kind (http with a path, https, tls with mutual TLS, ws),
// driven by the programs people use: curl, openssl s_client and a python
// websockets client, all run inside B's namespace.
func TestSourceKinds(t *testing.T) {
	for _, p := range []struct{ name, pkg string }{{"curl", "curl"}, {"openssl", "openssl"}, {"python3", "python3"}} {
		testprog.Need(t, p.name, p.pkg)
	}
	python := testprog.NeedPythonWebsockets(t)
	d := newDeployment(t, natlab.Public)
	pk, err := testcert.NewPKI(d.dir, "source")
	if err != nil {
		t.Fatal(err)
	}
	d.startServer()

	// The HTTP service reports what it received, to check the path
	// rewrite, the Host header and X-Forwarded-For.
	ln, err := d.lab.A.ListenTCP("127.0.0.1:3000")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "path=%s host=%s xff=%s", r.URL.Path, r.Host, r.Header.Get("X-Forwarded-For"))
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	serveTCP(t, d.lab.A, "127.0.0.1:3001", func(c net.Conn) { _, _ = io.Copy(c, c) })

	// Source names match destination names, so each source has its own
	// destination, two per service.
	d.write("dst.toml", d.clientConfig("token-a", `
[client.destinations.web]
url = "tcp://127.0.0.1:3000"
[client.destinations.web-tls]
url = "tcp://127.0.0.1:3000"
[client.destinations.echo-tls]
url = "tcp://127.0.0.1:3001"
[client.destinations.echo-ws]
url = "tcp://127.0.0.1:3001"
`))
	d.startClient(d.lab.A, "destination", d.path("dst.toml"))
	d.write("src.toml", d.clientConfig("token-b", fmt.Sprintf(`
[client.sources.web]
url = "http://127.0.0.1:8080/path"
[client.sources.web-tls]
url = "https://127.0.0.1:8443"
cert-file = %[1]q
key-file = %[2]q
[client.sources.echo-tls]
url = "tls://127.0.0.1:8003"
cert-file = %[1]q
key-file = %[2]q
cas-file = %[3]q
[client.sources.echo-ws]
url = "ws://127.0.0.1:8081"
[client.sources.nowhere]
url = "http://127.0.0.1:8082"
`, pk.ServerCert, pk.ServerKey, pk.CAFile)))
	srcProc := d.startClient(d.lab.B, "source", d.path("src.toml"))
	B := d.lab.B

	// The first request waits for the peers to find each other.
	want := "path=/path/x host=127.0.0.1:8080 xff=127.0.0.1"
	out, err := runUntil(B, want, "curl", "-sS", "--max-time", "10", "http://127.0.0.1:8080/x")
	if err != nil {
		t.Fatalf("http source: %v (last output %q)", err, out)
	}

	t.Run("https", func(t *testing.T) {
		want := "path=/y host=127.0.0.1:8443 xff=127.0.0.1"
		if out, err := runUntil(B, want, "curl", "-sS", "--max-time", "10", "--cacert", pk.CAFile, "https://127.0.0.1:8443/y"); err != nil {
			t.Fatalf("https source: %v (last output %q)", err, out)
		}
	})

	t.Run("tls mutual", func(t *testing.T) {
		args := []string{"-CAfile", pk.CAFile, "-cert", pk.ClientCert, "-key", pk.ClientKey}
		var echoed bool
		var out string
		for range 20 {
			if echoed, out = sClientEcho(t, B, "127.0.0.1:8003", args...); echoed {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if !echoed {
			t.Fatalf("s_client with a client certificate got no echo:\n%s", out)
		}
		if echoed, out := sClientEcho(t, B, "127.0.0.1:8003", "-CAfile", pk.CAFile); echoed {
			t.Fatalf("s_client without a client certificate was echoed:\n%s", out)
		} else {
			t.Logf("s_client without a client certificate: %s", strings.TrimSpace(out))
		}
		// The source client logs why it refused the handshake.
		var logged bool
		for range 100 {
			b, _ := os.ReadFile(srcProc.LogPath)
			if strings.Contains(string(b), "didn't provide a certificate") {
				logged = true
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !logged {
			t.Fatalf("the source's log (%s) does not say why the handshake was refused", srcProc.LogPath)
		}
	})

	t.Run("ws", func(t *testing.T) {
		if out, err := runUntil(B, "ok 102400", testprog.PythonWebSocketEcho(python, "ws://127.0.0.1:8081/")...); err != nil {
			t.Fatalf("python websockets client: %v (last output %q)", err, out)
		}
		out, err := B.Run(context.Background(), "curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:8081/")
		if err != nil || out != "400" {
			t.Fatalf("plain GET on the ws source: %q, %v; want 400", out, err)
		}
	})

	t.Run("no destination", func(t *testing.T) {
		out, err := B.Run(context.Background(), "curl", "-sS", "--max-time", "60", "-w", "\n%{http_code}", "http://127.0.0.1:8082/")
		if err != nil || !strings.HasSuffix(out, "\n503") || !strings.Contains(out, "no destination peer online") {
			t.Fatalf("http source without destination: %q, %v; want 503 with the reason", out, err)
		}
		t.Logf("http source without destination: %q", out)
	})
}

// runUntil runs argv on h until its output contains want, a bounded number
// of times (the tunnel may still be coming up).
func runUntil(h *natlab.Host, want string, argv ...string) (string, error) {
	var out string
	var err error
	for range 40 {
		out, err = h.Run(context.Background(), argv...)
		if err == nil && strings.Contains(out, want) {
			return out, nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err == nil {
		err = fmt.Errorf("output never contained %q", want)
	}
	return out, err
}

// sClientEcho runs openssl s_client on h against addr, sends a line and
// waits for it to come back, or for s_client to end.
func sClientEcho(t *testing.T, h *natlab.Host, addr string, extra ...string) (echoed bool, output string) {
	t.Helper()
	return testprog.SClientEcho(t, h.Command(append([]string{"openssl"}, testprog.SClientArgs(addr, extra...)...)...))
}
