package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/testcert"
)

// checkLogTypes fails the test for any record that shows a Go value instead
// of a plain one: objects other than a path, arrays of non-strings, "_ms"
// keys that are not numbers, ids and addresses that are not strings, a
// nil error, a doubled prefix or quic-go's raw text for a graceful close.
func checkLogTypes(t *testing.T, name string, recs []map[string]any) {
	t.Helper()
	for _, r := range recs {
		for k, v := range r {
			switch v := v.(type) {
			case map[string]any:
				if k != "path" {
					t.Errorf("%s: %q is an object %v in %v", name, k, v, r)
					continue
				}
				if _, ok := v["kind"].(string); !ok {
					t.Errorf("%s: path without a kind string in %v", name, r)
				}
				if _, ok := v["remote"].(string); !ok {
					t.Errorf("%s: path without a remote string in %v", name, r)
				}
				if _, ok := v["rtt_ms"].(float64); !ok {
					t.Errorf("%s: path without an rtt_ms number in %v", name, r)
				}
			case []any:
				for _, e := range v {
					if _, ok := e.(string); !ok {
						t.Errorf("%s: %q holds a non-string %v in %v", name, k, e, r)
					}
				}
			case string:
				for _, bad := range []string{"<nil>", "connet: connet:", "Application error 0x0"} {
					if strings.Contains(v, bad) {
						t.Errorf("%s: %q holds %q in %v", name, k, bad, r)
					}
				}
			case nil:
				t.Errorf("%s: %q is null in %v", name, k, r)
			}
			if strings.HasSuffix(k, "_ms") {
				if _, ok := v.(float64); !ok {
					t.Errorf("%s: %q is not a number of milliseconds in %v", name, k, r)
				}
			}
			switch k {
			case "peer", "id", "relay", "addr", "remote", "observed", "direct", "candidate":
				if _, ok := v.(string); !ok {
					t.Errorf("%s: %q is %T, not a string, in %v", name, k, v, r)
				}
			}
		}
	}
}

// TestLogsJSON runs a server, a destination at log level debug and a
// source at level fine, in JSON, tunnels one connection and stops the server. Every line
// must parse with plain types, each client must log the connection opened
// (peer, path kind, encryption) and closed (bytes each way, duration, how
// it ended), and the clients must word the server's stop as such.
func TestLogsJSON(t *testing.T) {
	dir := t.TempDir()
	cert, err := testcert.New("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := cert.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	controlPort, relayPort := freePort(t, "udp"), freePort(t, "udp")
	server := writeFile(t, dir, "server.toml", fmt.Sprintf(`
log-level = "debug"
log-format = "json"
[server]
tokens = ["token-a", "token-b"]
store-dir = %q
[[server.ingress]]
addr = "127.0.0.1:%d"
cert-file = %q
key-file = %q
[[server.relay-ingress]]
addr = "127.0.0.1:%d"
hostports = ["127.0.0.1:%[5]d"]
`, dir+"/store", controlPort, certFile, keyFile, relayPort))

	// The service: echoes what it reads, then ends its side.
	svc, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	go func() {
		for {
			c, err := svc.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	client := func(name, token, level, endpoint string) string {
		return writeFile(t, dir, name+".toml", fmt.Sprintf(`
log-level = %q
log-format = "json"
[client]
token = %q
server-addr = "127.0.0.1:%d"
server-cas-file = %q
direct-addr = "127.0.0.1:%d"
nat-pmp = "disabled"
%s`, level, token, controlPort, certFile, freePort(t, "udp"), endpoint))
	}
	srcPort := freePort(t, "tcp")
	dstConf := client("destination", "token-a", "debug", fmt.Sprintf("[client.destinations.web]\nurl = \"tcp://%s\"\n", svc.Addr()))
	// The source logs at fine: hole punching too.
	srcConf := client("source", "token-b", "fine", fmt.Sprintf("[client.sources.web]\nurl = \"tcp://127.0.0.1:%d\"\n", srcPort))

	srv := startNamed(t, "server", "server", "--config", server)
	srv.waitLine("control server listening", func(l string) bool { return strings.Contains(l, `"control server listening"`) })
	dst := startNamed(t, "destination", "--config", dstConf)
	src := startNamed(t, "source", "--config", srcConf)
	for _, p := range []*operatorProc{dst, src} {
		p.waitLine("a direct path", func(l string) bool { return strings.Contains(l, `"direct path up"`) })
	}

	// One connection through the source: 1000 bytes each way.
	payload := bytes.Repeat([]byte("0123456789"), 100)
	var got []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err = echoThrough(fmt.Sprintf("127.0.0.1:%d", srcPort), payload)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo through the source: %d bytes, %v", len(got), err)
	}
	for _, p := range []*operatorProc{dst, src} {
		p.waitLine("connection closed", func(l string) bool { return strings.Contains(l, `"connection closed"`) })
	}

	// The server stops; the clients must say so plainly.
	srv.stop()
	for _, p := range []*operatorProc{dst, src} {
		p.waitLine("control server stopping", func(l string) bool {
			return strings.Contains(l, `"control connection lost, reconnecting"`) && strings.Contains(l, `"err":"control server stopping"`)
		})
	}

	for _, p := range []*operatorProc{srv, dst, src} {
		checkLogTypes(t, p.name, logRecords(t, p))
	}
	fine := logRecords(t, src)
	probes, answers := records(fine, "probing peer"), records(fine, "candidate answered")
	// The relay connection always dials its candidates; the source may
	// not probe the peer itself if the peer's own probe got through first.
	if len(answers) == 0 {
		t.Errorf("source at level fine: no candidate lines:\n%s", src.output())
	}
	for _, r := range append(probes, answers...) {
		if r["level"] != "FINE" {
			t.Errorf("%v logged at %v, want FINE", r["msg"], r["level"])
		}
	}
	for _, r := range probes {
		if c, ok := r["candidates"].([]any); !ok || len(c) == 0 {
			t.Errorf("probing line without candidates: %v", r)
		}
	}
	for _, r := range answers {
		if _, ok := r["rtt_ms"].(float64); !ok {
			t.Errorf("candidate line without rtt_ms: %v", r)
		}
	}
	if n := len(records(logRecords(t, dst), "probing peer")); n != 0 {
		t.Errorf("destination at level debug logged %d fine lines", n)
	}

	for _, p := range []*operatorProc{dst, src} {
		recs := logRecords(t, p)
		opened, closed := records(recs, "connection opened"), records(recs, "connection closed")
		if len(opened) != 1 || len(closed) != 1 {
			t.Fatalf("%s: %d opened and %d closed lines, want 1 each:\n%s", p.name, len(opened), len(closed), p.output())
		}
		o, c := opened[0], closed[0]
		if o["level"] != "DEBUG" || o["name"] != "web" || o["role"] != p.name {
			t.Errorf("%s: opened line %v", p.name, o)
		}
		if id, _ := o["peer"].(string); len(id) != 16 || c["peer"] != id {
			t.Errorf("%s: peer %v opened, %v closed; want the same 16-character id", p.name, o["peer"], c["peer"])
		}
		if k := o["path"]; k != "direct-outgoing" && k != "direct-incoming" && k != "relay" {
			t.Errorf("%s: path kind %v", p.name, k)
		}
		if enc := o["encryption"]; enc == "" || enc == nil || (o["path"] != "relay" && enc != "quic") {
			t.Errorf("%s: encryption %v on a %v path", p.name, enc, o["path"])
		}
		n := float64(len(payload))
		if c["bytes_sent"] != n || c["bytes_received"] != n {
			t.Errorf("%s: closed with %v bytes sent and %v received, want %v each", p.name, c["bytes_sent"], c["bytes_received"], n)
		}
		if d, ok := c["duration_ms"].(float64); !ok || d < 0 || d > 10000 {
			t.Errorf("%s: duration_ms %v", p.name, c["duration_ms"])
		}
		if c["end"] != "eof" {
			t.Errorf("%s: ended %v, want eof", p.name, c["end"])
		}
	}
}

// TestSourceAnswersWithoutServer runs a client whose control server has
// never been up, with a source whose dial-timeout is a minute. A
// connection to the source must be answered (closed) at once, not after
// the minute; the log says why once per connection, and the status page
// lists the source with the reason.
func TestSourceAnswersWithoutServer(t *testing.T) {
	dir := t.TempDir()
	cert, err := testcert.New("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, _, err := cert.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	srcPort, httpPort, statusPort := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp")
	conf := writeFile(t, dir, "source.toml", fmt.Sprintf(`
log-format = "json"
[client]
token = "token-b"
server-addr = "127.0.0.1:%d"
server-cas-file = %q
direct-addr = "127.0.0.1:%d"
status-addr = "127.0.0.1:%d"
[client.sources.web]
url = "tcp://127.0.0.1:%d"
dial-timeout = "60s"
[client.sources.api]
url = "http://127.0.0.1:%d"
dial-timeout = "60s"
`, freePort(t, "udp"), certFile, freePort(t, "udp"), statusPort, srcPort, httpPort))
	src := startNamed(t, "source", "--config", conf)
	src.waitLine("source listening", func(l string) bool {
		return strings.Contains(l, `"source listening"`) && strings.Contains(l, fmt.Sprint(srcPort))
	})
	src.waitLine("http source listening", func(l string) bool {
		return strings.Contains(l, `"source listening"`) && strings.Contains(l, fmt.Sprint(httpPort))
	})

	// The http source answers with the reason.
	hc := http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/", httpPort))
	if err != nil {
		t.Fatalf("http source not answered within 10 s: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "no destination peer online") {
		t.Errorf("http source: %s %q; want 503 with the reason", resp.Status, body)
	}

	const conns = 2
	for range conns {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", srcPort), 5*time.Second)
		if errors.Is(err, syscall.ECONNRESET) {
			// Reset so soon that connect saw it: answered at once.
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(make([]byte, 1))
		_ = conn.Close()
		var nerr net.Error
		if n != 0 || errors.As(err, &nerr) && nerr.Timeout() {
			t.Fatalf("connection to the source not answered within 10 s (read %d bytes, %v)", n, err)
		}
		if err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read from the source: %v, want the connection closed or reset", err)
		}
	}
	// One line per connection, logged as it is closed.
	var refused []map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		refused = records(logRecords(t, src), "source connection closed: no tunnel")
		if len(refused) >= conns || time.Now().After(deadline) {
			break
		}
	}
	if len(refused) != conns {
		t.Errorf("%d refusal lines for %d connections:\n%s", len(refused), conns, src.output())
	}
	for _, r := range refused {
		if r["reason"] != "no-peer" || !strings.Contains(fmt.Sprint(r["err"]), "not connected to the control server") {
			t.Errorf("refusal line %v; want reason no-peer naming the control server", r)
		}
	}

	st, err := loopStatus(fmt.Sprintf("127.0.0.1:%d", statusPort))
	if err != nil {
		t.Fatal(err)
	}
	if st.Control.Connected || len(st.Sources) != 2 {
		t.Fatalf("status: control connected %v, sources %+v; want both sources", st.Control.Connected, st.Sources)
	}
	for _, s := range st.Sources {
		if s.LastReason != "no-peer" {
			t.Errorf("status of source %s: last_reason %q, want no-peer", s.Name, s.LastReason)
		}
	}
}
