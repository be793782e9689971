package forward_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// seen is what the service behind the tunnel observed of one request.
type seen struct{ path, query, host, xff, proto string }

// startHTTPService runs the HTTP service behind the fake tunnel: it echoes
// request bodies, reports what it saw in headers, and serves a WebSocket
// echo at /ws.
func startHTTPService(t *testing.T) (addr string, last func() seen) {
	t.Helper()
	ch := make(chan seen, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/ws") {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			typ, msg, err := c.Read(r.Context())
			if err == nil {
				_ = c.Write(r.Context(), typ, msg)
				_ = c.Close(websocket.StatusNormalClosure, "")
			}
			return
		}
		select {
		case ch <- seen{r.URL.Path, r.URL.RawQuery, r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto")}:
		default:
		}
		// Stream the body back as it arrives.
		w.WriteHeader(http.StatusOK)
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				_, _ = w.Write(buf[:n])
				w.(http.Flusher).Flush()
			}
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), func() seen {
		select {
		case s := <-ch:
			return s
		default:
			t.Fatal("the service saw no request")
			return seen{}
		}
	}
}

func httpClient(conf *tls.Config) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
}

func TestSourceHTTP(t *testing.T) {
	svc, last := startHTTPService(t)
	ft := &fakeTunnel{target: svc}
	src, _ := startSource(t, settings(t, "http://127.0.0.1:0/path"), ft.dial)
	base := "http://" + src.Addr().String()
	client := httpClient(nil)
	defer client.CloseIdleConnections()

	const requests = 10
	for i := range requests {
		resp, err := client.Get(base + "/x?q=1")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(body) != "" {
			t.Fatalf("request %d: %s %q %v", i, resp.Status, body, err)
		}
		s := last()
		if s.path != "/path/x" || s.query != "q=1" {
			t.Fatalf("service saw %s?%s, want /path/x?q=1", s.path, s.query)
		}
		if s.host != src.Addr().String() {
			t.Fatalf("service saw Host %q, want the client's %q", s.host, src.Addr())
		}
		if s.xff != "127.0.0.1" || s.proto != "http" {
			t.Fatalf("X-Forwarded-For %q, X-Forwarded-Proto %q", s.xff, s.proto)
		}
	}
	// Keep-alive: the requests share tunnelled connections. Usually one;
	// a request may rarely start before the previous connection is back in
	// the pool, so only demand clear reuse (without it there is one per
	// request).
	if n := ft.calls.Load(); n > requests/2 {
		t.Fatalf("%d tunnelled connections for %d requests, want reuse", n, requests)
	} else {
		t.Logf("%d requests over %d tunnelled connection(s)", requests, n)
	}
	if o := ft.lastOrigin(); o.IsValid() {
		t.Fatalf("origin %v for a pooled connection, want the zero value", o)
	}
}

func TestSourceHTTPLargeStreamedBody(t *testing.T) {
	svc, _ := startHTTPService(t)
	ft := &fakeTunnel{target: svc}
	src, _ := startSource(t, settings(t, "http://127.0.0.1:0"), ft.dial)
	body := make([]byte, 16<<20)
	_, _ = rand.Read(body)
	resp, err := httpClient(nil).Post("http://"+src.Addr().String()+"/upload", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil || n != int64(len(body)) || !bytes.Equal(h.Sum(nil), sha256Sum(body)) {
		t.Fatalf("echoed %d of %d bytes (err %v), equal=%v", n, len(body), err, bytes.Equal(h.Sum(nil), sha256Sum(body)))
	}
}

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// dialFailure is an error of connet.Source.DialFrom as it comes: a reason
// name, and a text naming the destination peer and what it met.
type dialFailure struct{ reason, text string }

func (e dialFailure) Error() string  { return e.text }
func (e dialFailure) Reason() string { return e.reason }

// A destination peer that could not reach its service: the error names the
// peer and the service's address.
var errServiceRefused = dialFailure{"endpoint-refused",
	`source "web": endpoint refused: destination peer-3f9a1c7b: dial tcp 10.1.2.3:8080: connect: connection refused`}

// TestSourceHTTPNoDestination: a request whose tunnel cannot be opened gets
// 503 or 502 with a short reason; the peer id and the service's address the
// error holds go to the log only.
func TestSourceHTTPNoDestination(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		body   string
		// logged is in the log line, with the error's detail.
		logged []string
	}{
		{"no reason", errNoDestination, http.StatusBadGateway, "connet: 502 Bad Gateway: the service did not answer\n",
			[]string{"no destination for"}},
		{"service refused", errServiceRefused, http.StatusBadGateway,
			"connet: 502 Bad Gateway: the destination refused the connection (endpoint-refused)\n",
			[]string{"reason=endpoint-refused", "destination peer-3f9a1c7b: dial tcp 10.1.2.3:8080: connect: connection refused"}},
		{"no peer", dialFailure{"no-peer", `source "web": no destination peer online`}, http.StatusServiceUnavailable,
			"connet: 503 Service Unavailable: no destination peer online (no-peer)\n", []string{"reason=no-peer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft := &fakeTunnel{fail: tc.err}
			src, logs := startSource(t, settings(t, "http://127.0.0.1:0/path"), ft.dial)
			resp, err := httpClient(nil).Get("http://" + src.Addr().String() + "/x")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tc.status || string(body) != tc.body {
				t.Fatalf("got %s %q, want %d %q", resp.Status, body, tc.status, tc.body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Fatalf("content type %q", ct)
			}
			logs.waitLog(t, append([]string{"level=WARN", "source request failed"}, tc.logged...)...)
		})
	}
}

func TestSourceHTTPWebSocketUpgrade(t *testing.T) {
	svc, _ := startHTTPService(t)
	ft := &fakeTunnel{target: svc}
	src, _ := startSource(t, settings(t, "http://127.0.0.1:0/app"), ft.dial)
	ctx := t.Context()
	c, _, err := websocket.Dial(ctx, "ws://"+src.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("upgrade through the proxy")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil || string(msg) != "upgrade through the proxy" {
		t.Fatalf("echo %q, %v", msg, err)
	}
}

func TestSourceHTTPS(t *testing.T) {
	p := newPKI(t)
	svc, last := startHTTPService(t)
	ft := &fakeTunnel{target: svc}
	s := settings(t, "https://127.0.0.1:0/secure")
	s.CertFile, s.KeyFile = p.ServerCert, p.ServerKey
	src, _ := startSource(t, s, ft.dial)
	resp, err := httpClient(clientTLS(t, p, "", "")).Post("https://"+src.Addr().String()+"/x", "text/plain", strings.NewReader("tls ping"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "tls ping" {
		t.Fatalf("got %s %q", resp.Status, body)
	}
	if s := last(); s.path != "/secure/x" || s.proto != "https" {
		t.Fatalf("service saw %+v", s)
	}
}

func TestSourceHTTPSMutual(t *testing.T) {
	p := newPKI(t)
	svc, _ := startHTTPService(t)
	ft := &fakeTunnel{target: svc}
	s := settings(t, "https://127.0.0.1:0")
	s.CertFile, s.KeyFile, s.CAsFile = p.ServerCert, p.ServerKey, p.CAFile
	src, logs := startSource(t, s, ft.dial)
	url := "https://" + src.Addr().String() + "/"

	if resp, err := httpClient(clientTLS(t, p, "", "")).Get(url); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("no client certificate: got %s, want a refused handshake", resp.Status)
	}
	logs.waitLog(t, "level=WARN", "TLS handshake error", "certificate")
	if resp, err := httpClient(clientTLS(t, p, p.OtherCert, p.OtherKey)).Get(url); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("foreign client certificate: got %s, want a refused handshake", resp.Status)
	}
	logs.waitLog(t, "level=WARN", "TLS handshake error", "x509")

	resp, err := httpClient(clientTLS(t, p, p.ClientCert, p.ClientKey)).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("good client certificate: %s", resp.Status)
	}
	if n := ft.calls.Load(); n != 1 {
		t.Fatalf("%d tunnels, want 1 (only for the good client)", n)
	}
}
