package connet_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/forward"
	"github.com/p2pconnet/connet/internal/testprog"
	"github.com/p2pconnet/connet/internal/testwait"
)

// TestHostileEndpointRequests sends what a hostile web page or a curious
// client sends at the http/ws sources and file destinations of a real
// tunnel, with curl and python3-websockets, while a healthy tunnel beside
// them keeps echoing: DNS rebinding (an attacker's name resolved to the
// source's address), dotfiles and symlinks leading outside a file root,
// and a failed tunnel whose error holds the destination's peer id and its
// service's address. Each is refused or answered with no more than needed;
// the details go to the logs.
func TestHostileEndpointRequests(t *testing.T) {
	curl := testprog.Need(t, "curl", "curl")
	python := testprog.NeedPythonWebsockets(t)
	h := newHarness(t)
	healthy := startHealthyTunnel(t, h)
	ep := startHostileEndpoints(t, h)

	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"DNS rebinding at an http source", func(t *testing.T) {
			port := ep.port(t, ep.web)
			for _, args := range [][]string{
				{"--resolve", "attacker.example:" + port + ":127.0.0.1", "http://attacker.example:" + port + "/admin"},
				{"-H", "Host: attacker.example:" + port, "http://" + ep.web + "/admin"},
			} {
				if out := runCurl(t, curl, args...); !strings.HasSuffix(out, "\n421") || strings.Contains(out, "admin page") {
					t.Fatalf("curl %q: %q, want 421 without the service's page", args, out)
				}
			}
			if got := ep.webHosts(); len(got) != 0 {
				t.Fatalf("refused requests reached the service as Host %q", got)
			}
			if out := runCurl(t, curl, "http://localhost:"+port+"/admin"); out != "admin page\n200" {
				t.Fatalf("curl by localhost: %q, want the service's page", out)
			}
			if got := ep.webHosts(); strings.Join(got, " ") != "localhost:"+port {
				t.Fatalf("the service saw Host %q, want only localhost:%s", got, port)
			}
			ep.srcLogs.wait(t, "host name not its own", "host=attacker.example:"+port)
		}},
		{"DNS rebinding at a ws source", func(t *testing.T) {
			port := ep.port(t, ep.ws)
			attacker := "attacker.example:" + port
			if out := runPython(t, testprog.PythonWebSocketAt(python, ep.ws, "ws://"+attacker+"/", "http://"+attacker)); out != "status 421" {
				t.Fatalf("rebinding WebSocket: %q, want status 421", out)
			}
			if n := ep.echoConns.Load(); n != 0 {
				t.Fatalf("a refused WebSocket reached the echo service (%d connections)", n)
			}
			self := "127.0.0.1:" + port
			if out := runPython(t, testprog.PythonWebSocketAt(python, ep.ws, "ws://"+self+"/", "http://"+self)); out != "ok" {
				t.Fatalf("WebSocket by address: %q, want ok", out)
			}
		}},
		{"dotfile through a tunnel", func(t *testing.T) {
			ep.wantNotFound(t, curl, "/.env", "/.git/config", "/%2eenv")
			if out := runCurl(t, curl, "http://"+ep.files+"/a.txt"); out != "public\n200" {
				t.Fatalf("/a.txt: %q", out)
			}
		}},
		{"listing without symlinks leading outside", func(t *testing.T) {
			out := runCurl(t, curl, "http://"+ep.files+"/")
			if !strings.HasSuffix(out, "\n200") || !strings.Contains(out, `href="a.txt"`) || !strings.Contains(out, `href="inner.txt"`) {
				t.Fatalf("listing: %q, want a.txt and inner.txt", out)
			}
			for _, hidden := range []string{"outside.txt", "outside-dir", ".env", ".git"} {
				if strings.Contains(out, hidden) {
					t.Fatalf("listing names %s: %q", hidden, out)
				}
			}
			ep.wantNotFound(t, curl, "/outside.txt", "/outside-dir/secret.txt")
			if out := runCurl(t, curl, "http://"+ep.files+"/inner.txt"); out != "public\n200" {
				t.Fatalf("/inner.txt (a symlink inside the root): %q", out)
			}
		}},
		{"502 without peer id or service address", func(t *testing.T) {
			out := runCurl(t, curl, "http://"+ep.down+"/")
			if out != "connet: 502 Bad Gateway: the destination refused the connection (endpoint-refused)\n\n502" {
				t.Fatalf("502 body %q", out)
			}
			for _, secret := range []string{ep.dstID, ep.downService} {
				if strings.Contains(out, secret) {
					t.Fatalf("the 502 shows %q: %q", secret, out)
				}
			}
			ep.srcLogs.wait(t, "level=WARN", "source request failed", "reason=endpoint-refused", ep.dstID, ep.downService)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, c.run)
	}
	healthy.stop(t)
}

// hostileEndpoints is a destination client and a source client with the
// endpoints of TestHostileEndpointRequests, each source in front of the
// destination of its name:
//   - web: an http source, to a tcp destination whose HTTP service records
//     the Host of every request;
//   - ws: a ws source, to a tcp destination of an echo service counting
//     its connections;
//   - files: an http source, to a file destination;
//   - down: an http source, to a tcp destination whose service is down.
type hostileEndpoints struct {
	web, ws, files, down string // source addresses
	dstID                string // the destination client's peer id
	downService          string // the address of the service that is down
	srcLogs              *logLines

	echoConns atomic.Int64
	mu        sync.Mutex
	hosts     []string
}

func startHostileEndpoints(t *testing.T, h *harness) *hostileEndpoints {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var served sync.WaitGroup
	t.Cleanup(func() { cancel(); served.Wait() })
	ep := &hostileEndpoints{srcLogs: &logLines{}}

	web := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ep.mu.Lock()
		ep.hosts = append(ep.hosts, r.Host)
		ep.mu.Unlock()
		_, _ = w.Write([]byte("admin page"))
	}), ReadHeaderTimeout: 10 * time.Second}
	webLn := listenLoopback(t)
	served.Go(func() { _ = web.Serve(webLn) })
	t.Cleanup(func() { _ = web.Close() })

	echoLn := listenLoopback(t)
	served.Go(func() {
		for {
			c, err := echoLn.Accept()
			if err != nil {
				return
			}
			ep.echoConns.Add(1)
			served.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			})
		}
	})
	down := listenLoopback(t)
	ep.downService = down.Addr().String()
	_ = down.Close()

	dc := h.connect("token-d")
	if ep.dstID = dc.Status().ID; ep.dstID == "" {
		t.Fatal("the destination client has no peer id")
	}
	for name, raw := range map[string]string{
		"web":   "tcp://" + webLn.Addr().String(),
		"ws":    "tcp://" + echoLn.Addr().String(),
		"files": "file://" + hostileFileRoot(t),
		"down":  "tcp://" + ep.downService,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		ed, err := forward.NewDestination(config.DestinationSettings{Name: name, URL: u}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		d, err := dc.Destination(ctx, connet.NewDestinationConfig(name))
		if err != nil {
			t.Fatal(err)
		}
		served.Go(func() { _ = ed.Serve(ctx, d) })
	}

	sc := h.connect("token-s")
	srcLog := slog.New(slog.NewTextHandler(ep.srcLogs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for name, addr := range map[string]*string{"web": &ep.web, "ws": &ep.ws, "files": &ep.files, "down": &ep.down} {
		scheme := "http"
		if name == "ws" {
			scheme = "ws"
		}
		s, err := sc.Source(ctx, connet.NewSourceConfig(name))
		if err != nil {
			t.Fatal(err)
		}
		// Wait for a path, so that each case meets a ready tunnel.
		if c := dialEventuallyRefused(t, s); c != nil {
			_ = c.Close()
		}
		es, err := forward.NewSource(config.SourceSettings{Name: name, URL: &url.URL{Scheme: scheme, Host: "127.0.0.1:0"}}, srcLog.With("source", name))
		if err != nil {
			t.Fatal(err)
		}
		*addr = es.Addr().String()
		served.Go(func() { _ = es.Serve(ctx, s.DialEarly) })
	}
	// The first connection of each tunnel was the wait above's; the echo
	// service may count its own only after the dial returned.
	testwait.For(t, 10*time.Second, func() bool { return ep.echoConns.Load() >= 1 }, "the echo service's first connection")
	ep.echoConns.Store(0)
	ep.mu.Lock()
	ep.hosts = nil
	ep.mu.Unlock()
	return ep
}

func (ep *hostileEndpoints) webHosts() []string {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return append([]string(nil), ep.hosts...)
}

// wantNotFound checks that the file source answers 404 for each path,
// showing no secret of the file root.
func (ep *hostileEndpoints) wantNotFound(t *testing.T, curl string, paths ...string) {
	t.Helper()
	for _, path := range paths {
		if out := runCurl(t, curl, "http://"+ep.files+path); !strings.HasSuffix(out, "\n404") || strings.Contains(out, "SECRET") {
			t.Fatalf("%s: %q, want 404", path, out)
		}
	}
}

func (ep *hostileEndpoints) port(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// dialEventuallyRefused waits until the source reaches a destination peer:
// a connection, or the peer's refusal (the service that is down).
func dialEventuallyRefused(t *testing.T, src *connet.Source) net.Conn {
	t.Helper()
	var err error
	for range 300 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var conn net.Conn
		conn, err = src.Dial(ctx)
		cancel()
		if err == nil {
			return conn
		}
		if connet.ReasonOf(err) == "endpoint-refused" {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no destination reached: %v", err)
	return nil
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// hostileFileRoot makes dir/root with a public file, dotfiles, a symlink
// inside the root, and symlinks to dir/outside.
func hostileFileRoot(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root, outside := filepath.Join(dir, "root"), filepath.Join(dir, "outside")
	for _, d := range []string{filepath.Join(root, ".git"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{
		filepath.Join(root, "a.txt"):          "public",
		filepath.Join(root, ".env"):           "SECRET_KEY=SECRET",
		filepath.Join(root, ".git", "config"): "SECRET-GIT",
		filepath.Join(outside, "secret.txt"):  "SECRET-OUTSIDE",
	} {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"inner.txt":   "a.txt",
		"outside.txt": filepath.Join(outside, "secret.txt"),
		"outside-dir": "../outside",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// logLines collects log lines for assertions.
type logLines struct{ testprog.LockedBuffer }

// wait polls for a line holding every part, for at most 10 s.
func (l *logLines) wait(t *testing.T, parts ...string) {
	t.Helper()
	testwait.For(t, 10*time.Second, func() bool {
		for line := range strings.SplitSeq(l.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return true
			}
		}
		return false
	}, "a log line with %q in:\n%s", parts, l)
}

// programTimeout bounds curl and python; CommandContext kills them by PID
// when they run over or the test ends.
const programTimeout = 30 * time.Second

// runCurl runs curl and returns the body, then the HTTP status on a line
// of its own.
func runCurl(t *testing.T, curl string, args ...string) string {
	t.Helper()
	return runTool(t, curl, append([]string{"-sS", "--max-time", "20", "-w", "\n%{http_code}"}, args...)...)
}

func runPython(t *testing.T, argv []string) string {
	t.Helper()
	return strings.TrimSpace(runTool(t, argv[0], argv[1:]...))
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), programTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v: %s", name, args, err, out)
	}
	return string(out)
}
