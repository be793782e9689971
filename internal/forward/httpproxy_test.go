package forward

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/p2pconnet/connet/internal/config"
)

// echoHeaders answers with what the service saw of the request.
func echoHeaders(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "path=%s\nquery=%s\nhost=%s\nxff=%s\nxfh=%s\nxfp=%s\n",
		r.URL.Path, r.URL.RawQuery, r.Host, r.Header.Get("X-Forwarded-For"),
		r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Proto"))
}

// frontClient is an HTTP client whose every connection is a new tunnelled
// connection of ft.
func frontClient(ft *fakeTunnel) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", ft.Addr())
		},
	}}
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func httpDest(raw string) config.DestinationSettings {
	u, err := urlParse(raw)
	if err != nil {
		panic(err)
	}
	return config.DestinationSettings{Name: "web", URL: u}
}

func TestHTTPDestinationRewritesPathAndForwardsOrigin(t *testing.T) {
	svc := httptest.NewServer(http.HandlerFunc(echoHeaders))
	defer svc.Close()
	ft := startDestination(t, httpDest(svc.URL+"/base"), testOrigin)
	c := frontClient(ft)

	var reused []bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }}
	for _, path := range []string{"/x/y?q=1", "/"} {
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "http://front.example"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		want := map[string]string{
			"/x/y?q=1": "path=/base/x/y\nquery=q=1\n",
			"/":        "path=/base/\nquery=\n",
		}[path]
		want += "host=" + strings.TrimPrefix(svc.URL, "http://") + "\nxff=203.0.113.7\nxfh=front.example\nxfp=http\n"
		if resp.StatusCode != 200 || string(body) != want {
			t.Errorf("GET %s: %d\n%s\nwant:\n%s", path, resp.StatusCode, body, want)
		}
	}
	// Keep-alive: both requests went over one tunnelled connection.
	if n := ft.accepted.Load(); n != 1 || len(reused) != 2 || !reused[1] {
		t.Errorf("keep-alive: %d tunnelled connections, reused %v; want 1 connection reused", n, reused)
	}
}

// patternReader is a deterministic stream of n bytes, generated as read, so
// large bodies are never held whole.
func patternReader(seed uint64, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8(seedBytes(seed)), n)
}

func seedBytes(seed uint64) (s [32]byte) {
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

func digest(t *testing.T, r io.Reader) (int64, [32]byte) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatalf("after %d bytes: %v", n, err)
	}
	return n, [32]byte(h.Sum(nil))
}

func TestHTTPDestinationStreamsLargeBodies(t *testing.T) {
	const size = 64 << 20
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case "PUT":
			n, sum := digest(t, r.Body)
			fmt.Fprintf(w, "%d %x", n, sum)
		case "GET":
			_, _ = io.Copy(w, patternReader(2, size))
		}
	}))
	defer svc.Close()
	ft := startDestination(t, httpDest(svc.URL), testOrigin)
	c := frontClient(ft)

	req, err := http.NewRequest("PUT", "http://front/up", patternReader(1, size))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	_, want := digest(t, patternReader(1, size))
	if string(got) != fmt.Sprintf("%d %x", size, want) {
		t.Errorf("upload: service saw %s", got)
	}

	resp, err = c.Get("http://front/down")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, sum := digest(t, resp.Body)
	_, want = digest(t, patternReader(2, size))
	if n != size || sum != want {
		t.Errorf("download: %d bytes, digest differs: %v", n, sum != want)
	}
}

// A response reaches the client while the service is still writing it:
// the proxy flushes instead of buffering.
func TestHTTPDestinationFlushesStreamingResponses(t *testing.T) {
	more := make(chan struct{})
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-more:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "second\n")
	}))
	defer svc.Close()
	defer close(more) // release the handler should the test fail first
	ft := startDestination(t, httpDest(svc.URL), testOrigin)

	resp, err := frontClient(ft).Get("http://front/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, len("first\n"))
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first\n" {
		t.Fatalf("first chunk: %q, %v", buf, err)
	}
	more <- struct{}{}
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest: %q, %v", rest, err)
	}
}

func TestHTTPDestinationPassesWebSocketUpgrade(t *testing.T) {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		for {
			typ, msg, err := ws.Read(r.Context())
			if err != nil {
				return
			}
			if err := ws.Write(r.Context(), typ, append([]byte("echo "+r.URL.Path+" "), msg...)); err != nil {
				return
			}
		}
	}))
	defer svc.Close()
	ft := startDestination(t, httpDest(svc.URL+"/ws"), testOrigin)

	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, "ws://front/chat", &websocket.DialOptions{HTTPClient: frontClient(ft)})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	for _, m := range []string{"hello", "again"} {
		if err := ws.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
		_, got, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo /ws/chat "+m {
			t.Errorf("got %q", got)
		}
	}
	_ = ws.Close(websocket.StatusNormalClosure, "")
}

func TestHTTPDestinationBackendDownIs502(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	ft := startDestination(t, httpDest("http://"+addr+"/base"), testOrigin)
	code, body := get(t, frontClient(ft), "http://front/x")
	if code != http.StatusBadGateway || !strings.Contains(body, "cannot reach the service") {
		t.Errorf("got %d %q, want 502 with a reason", code, body)
	}
}

func TestHTTPSDestination(t *testing.T) {
	pki := newTestPKI(t, "https")
	other := newTestPKI(t, "other")
	svc := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := "none"
		if len(r.TLS.PeerCertificates) > 0 {
			client = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "%s client=%s", r.URL.Path, client)
	}))
	svc.TLS = &tls.Config{
		Certificates: []tls.Certificate{pki.Server.TLS},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pki.CA.Pool,
	}
	svc.StartTLS()
	defer svc.Close()
	port := svc.Listener.Addr().(*net.TCPAddr).Port

	for _, tc := range []struct {
		name     string
		settings func(d *config.DestinationSettings)
		host     string
		want     string // body; "" means a 502
	}{
		{"cas-file", func(d *config.DestinationSettings) { d.CAsFile = pki.CAFile }, "localhost", "/b/x client=none"},
		{"cas-file by IP", func(d *config.DestinationSettings) { d.CAsFile = pki.CAFile }, "127.0.0.1", "/b/x client=none"},
		{"insecure-skip-verify", func(d *config.DestinationSettings) { d.InsecureSkipVerify = true }, "localhost", "/b/x client=none"},
		{"mutual TLS", func(d *config.DestinationSettings) {
			d.CAsFile, d.CertFile, d.KeyFile = pki.CAFile, pki.ClientCert, pki.ClientKey
		}, "localhost", "/b/x client=client-https"},
		{"untrusted CA", func(d *config.DestinationSettings) { d.CAsFile = other.CAFile }, "localhost", ""},
		{"system roots", func(d *config.DestinationSettings) {}, "localhost", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := httpDest(fmt.Sprintf("https://%s:%d/b", tc.host, port))
			tc.settings(&d)
			ft := startDestination(t, d, testOrigin)
			code, body := get(t, frontClient(ft), "http://front/x")
			if tc.want == "" {
				if code != http.StatusBadGateway {
					t.Errorf("got %d %q, want 502", code, body)
				}
				return
			}
			if code != 200 || body != tc.want {
				t.Errorf("got %d %q, want %q", code, body, tc.want)
			}
		})
	}
}

func TestHTTPSDestinationMutualTLSRequired(t *testing.T) {
	pki := newTestPKI(t, "mtls")
	svc := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("secret"))
	}))
	svc.TLS = &tls.Config{Certificates: []tls.Certificate{pki.Server.TLS}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.CA.Pool}
	svc.StartTLS()
	defer svc.Close()
	d := httpDest(svc.URL)
	d.CAsFile = pki.CAFile // trusted server, but no client certificate
	ft := startDestination(t, d, testOrigin)
	code, body := get(t, frontClient(ft), "http://front/")
	if code != http.StatusBadGateway || bytes.Contains([]byte(body), []byte("secret")) {
		t.Errorf("without a client certificate: got %d %q, want 502", code, body)
	}
}
