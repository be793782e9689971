package forward_test

// DNS rebinding against local sources, driven by the clients a user has:
// curl resolving an attacker's name to the source's loopback address, and
// a python3-websockets client sending that name in Host and Origin, as a
// browser page of that name would.

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/p2pconnet/connet/internal/testprog"
)

// startHostRecorder runs an HTTP service that records the Host of every
// request it sees.
func startHostRecorder(t *testing.T) (addr string, hosts func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Host)
		mu.Unlock()
		_, _ = w.Write([]byte("admin page"))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// curlStatus runs curl with args and returns its output: the body, then
// the HTTP status on a line of its own.
func curlStatus(t *testing.T, curl string, args ...string) string {
	t.Helper()
	out, err := runProgram(t, curl, append([]string{"-sS", "--max-time", "20", "-w", "\n%{http_code}"}, args...)...)
	if err != nil {
		t.Fatalf("curl %q: %v: %s", args, err, out)
	}
	return out
}

func TestSourceHTTPRefusesRebindingWithCurl(t *testing.T) {
	curl := testprog.Need(t, "curl", "curl")
	svc, hosts := startHostRecorder(t)
	ft := &fakeTunnel{target: svc}
	s := settings(t, "http://127.0.0.1:0")
	s.AllowedHosts = []string{"app.example.com"}
	src, logs := startSource(t, s, ft.dial)
	port := portOf(t, src.Addr())
	addr := src.Addr().String()

	// The attacker's name resolved to the source, as after a rebinding,
	// and the same Host sent to the address.
	for _, args := range [][]string{
		{"--resolve", "attacker.example:" + port + ":127.0.0.1", "http://attacker.example:" + port + "/admin"},
		{"-H", "Host: attacker.example:" + port, "http://" + addr + "/admin"},
	} {
		out := curlStatus(t, curl, args...)
		if !strings.HasSuffix(out, "\n421") || strings.Contains(out, "admin page") {
			t.Fatalf("curl %q: %q, want 421 and not the service's page", args, out)
		}
	}
	logs.waitLog(t, "level=WARN", "host name not its own", "host=attacker.example:"+port)
	if n := ft.calls.Load(); n != 0 || len(hosts()) != 0 {
		t.Fatalf("refused requests opened %d tunnels and reached the service as %q", n, hosts())
	}

	// The names that are ours.
	for _, args := range [][]string{
		{"http://" + addr + "/"},
		{"http://localhost:" + port + "/"},
		{"--resolve", "app.example.com:" + port + ":127.0.0.1", "http://app.example.com:" + port + "/"},
	} {
		if out := curlStatus(t, curl, args...); out != "admin page\n200" {
			t.Fatalf("curl %q: %q, want the service's page", args, out)
		}
	}
	want := []string{addr, "localhost:" + port, "app.example.com:" + port}
	if got := hosts(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("the service saw Host %q, want %q", got, want)
	}
}

func TestSourceWSRefusesRebindingWithPython(t *testing.T) {
	python := testprog.NeedPythonWebsockets(t)
	ft := &fakeTunnel{target: testprog.ServeTCPEcho(t)}
	s := settings(t, "ws://127.0.0.1:0")
	s.AllowedHosts = []string{"app.example.com"}
	src, logs := startSource(t, s, ft.dial)
	port := portOf(t, src.Addr())
	addr := src.Addr().String()

	run := func(host, origin string) string {
		t.Helper()
		argv := testprog.PythonWebSocketAt(python, addr, "ws://"+host+"/", origin)
		out, err := runProgram(t, argv[0], argv[1:]...)
		if err != nil {
			t.Fatalf("python websockets as %s (origin %q): %v: %s", host, origin, err, out)
		}
		return strings.TrimSpace(out)
	}
	// A page of attacker.example re-resolved to 127.0.0.1: its Origin and
	// Host name the same site, so the same-origin rule alone let it in.
	attacker := "attacker.example:" + port
	if out := run(attacker, "http://"+attacker); out != "status 421" {
		t.Fatalf("rebinding WebSocket: %q, want status 421", out)
	}
	logs.waitLog(t, "level=WARN", "host name not its own", "host="+attacker)
	if n := ft.calls.Load(); n != 0 {
		t.Fatalf("a refused WebSocket opened %d tunnels", n)
	}

	for _, host := range []string{addr, "localhost:" + port, "app.example.com:" + port} {
		if out := run(host, "http://"+host); out != "ok" {
			t.Fatalf("WebSocket as %s: %q, want ok", host, out)
		}
	}
	// Our name, but a page of another origin: allowed-origins decides.
	if out := run("localhost:"+port, "http://"+attacker); out != "status 403" {
		t.Fatalf("foreign origin: %q, want status 403", out)
	}
}

func portOf(t *testing.T, a net.Addr) string {
	t.Helper()
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}
