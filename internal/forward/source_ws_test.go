package forward_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/p2pconnet/connet/internal/testprog"
)

// wsEcho opens a WebSocket to url with the given Origin ("" for none),
// sends msg as one binary message and reads the echoed bytes, which the
// source may split across messages. It returns the HTTP status of a
// refused handshake.
func wsEcho(t *testing.T, url, origin string, msg []byte) ([]byte, int, error) {
	t.Helper()
	ctx := t.Context()
	opts := &websocket.DialOptions{HTTPClient: &http.Client{Timeout: 30 * time.Second}}
	if origin != "" {
		opts.HTTPHeader = http.Header{"Origin": {origin}}
	}
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, status, err
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
		return nil, 0, err
	}
	var got []byte
	for range 10000 {
		if len(got) >= len(msg) {
			break
		}
		typ, part, err := c.Read(ctx)
		if err != nil {
			return got, 0, err
		}
		if typ != websocket.MessageBinary {
			t.Fatalf("got a %v message, want binary", typ)
		}
		got = append(got, part...)
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
	return got, http.StatusSwitchingProtocols, nil
}

func TestSourceWS(t *testing.T) {
	ft := &fakeTunnel{target: testprog.ServeTCPEcho(t)}
	src, _ := startSource(t, settings(t, "ws://127.0.0.1:0"), ft.dial)
	msg := bytes.Repeat([]byte{0, 1, 2, 0xff}, 50000) // 200 kB, beyond default message limits
	got, _, err := wsEcho(t, "ws://"+src.Addr().String()+"/", "", msg)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echoed %d of %d bytes: %v", len(got), len(msg), err)
	}
	if o := ft.lastOrigin(); !o.IsValid() || !o.Addr().IsLoopback() {
		t.Fatalf("origin %v, want the client's loopback address", o)
	}
}

func TestSourceWSS(t *testing.T) {
	p := newPKI(t)
	ft := &fakeTunnel{target: testprog.ServeTCPEcho(t)}
	s := settings(t, "wss://127.0.0.1:0/tunnel")
	s.CertFile, s.KeyFile = p.ServerCert, p.ServerKey
	src, _ := startSource(t, s, ft.dial)
	ctx := t.Context()
	hc := httpClient(clientTLS(t, p, "", ""))
	c, _, err := websocket.Dial(ctx, "wss://"+src.Addr().String()+"/tunnel", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	conn := websocket.NetConn(ctx, c, websocket.MessageBinary)
	if _, err := conn.Write([]byte("secure bytes")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("secure bytes"))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != "secure bytes" {
		t.Fatalf("echo %q, %v", got, err)
	}
	// Only the URL's path is the endpoint.
	resp, err := hc.Get("https://" + src.Addr().String() + "/elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("other path: %s, want 404", resp.Status)
	}
}

func TestSourceWSPlainRequest(t *testing.T) {
	ft := &fakeTunnel{target: testprog.ServeTCPEcho(t)}
	src, _ := startSource(t, settings(t, "ws://127.0.0.1:0"), ft.dial)
	resp, err := httpClient(nil).Get("http://" + src.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "WebSocket") {
		t.Fatalf("got %s %q, want 400 explaining it is a WebSocket source", resp.Status, body)
	}
	if n := ft.calls.Load(); n != 0 {
		t.Fatalf("%d tunnels opened for a plain request", n)
	}
}

func TestSourceWSNoDestination(t *testing.T) {
	ft := &fakeTunnel{fail: errNoDestination}
	src, logs := startSource(t, settings(t, "ws://127.0.0.1:0"), ft.dial)
	_, status, err := wsEcho(t, "ws://"+src.Addr().String()+"/", "", []byte("x"))
	if err == nil || status != http.StatusBadGateway {
		t.Fatalf("status %d, err %v; want 502", status, err)
	}
	logs.waitLog(t, "level=WARN", "no destination")
}

func TestSourceWSOrigins(t *testing.T) {
	ft := &fakeTunnel{target: testprog.ServeTCPEcho(t)}
	for _, tc := range []struct {
		name    string
		allowed []string
		origin  string // "self" is the source's own origin
		want    int
	}{
		{"no origin", nil, "", http.StatusSwitchingProtocols},
		{"same origin", nil, "self", http.StatusSwitchingProtocols},
		{"foreign origin", nil, "https://evil.example", http.StatusForbidden},
		{"foreign origin, others allowed", []string{"https://app.example.com"}, "https://evil.example", http.StatusForbidden},
		{"allowed origin", []string{"https://app.example.com", "http://localhost:8080"}, "https://App.Example.com", http.StatusSwitchingProtocols},
		{"allowed origin needs its port", []string{"http://localhost:8080"}, "http://localhost:9090", http.StatusForbidden},
		{"allowed origin needs its scheme", []string{"https://app.example.com"}, "http://app.example.com", http.StatusForbidden},
		{"null origin", nil, "null", http.StatusForbidden},
		{"any origin", []string{"*"}, "https://evil.example", http.StatusSwitchingProtocols},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := settings(t, "ws://127.0.0.1:0")
			s.AllowedOrigins = tc.allowed
			src, logs := startSource(t, s, ft.dial)
			origin := tc.origin
			if origin == "self" {
				origin = "http://" + src.Addr().String()
			}
			got, status, err := wsEcho(t, "ws://"+src.Addr().String()+"/", origin, []byte("origin test"))
			if status != tc.want {
				t.Fatalf("status %d (err %v), want %d", status, err, tc.want)
			}
			if tc.want == http.StatusSwitchingProtocols && (err != nil || string(got) != "origin test") {
				t.Fatalf("echo %q, %v", got, err)
			}
			if tc.want == http.StatusForbidden {
				logs.waitLog(t, "level=WARN", "origin="+origin)
			}
		})
	}
}

// TestSourceWSTunnelFailureIsNoNormalClosure: when the tunnel under a
// WebSocket session fails (here its far end resets after a first
// message), the client sees an abnormal closure, never the normal one
// (1000) that would make a cut transfer look complete.
func TestSourceWSTunnelFailureIsNoNormalClosure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = c.Write([]byte("partial"))
		time.Sleep(100 * time.Millisecond)
		_ = c.(*net.TCPConn).SetLinger(0)
		_ = c.Close()
	}()
	ft := &fakeTunnel{target: ln.Addr().String()}
	src, _ := startSource(t, settings(t, "ws://127.0.0.1:0"), ft.dial)
	ctx := t.Context()
	c, _, err := websocket.Dial(ctx, "ws://"+src.Addr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	var got []byte
	for range 100 {
		_, part, err := c.Read(ctx)
		if err != nil {
			if string(got) != "partial" || websocket.CloseStatus(err) == websocket.StatusNormalClosure {
				t.Fatalf("read %q, then %v; want %q, then an abnormal closure", got, err, "partial")
			}
			return
		}
		got = append(got, part...)
	}
	t.Fatal("the session did not end")
}
