package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
)

// These tests run the binary on this host's loopback, without a lab: they
// need neither root nor nftables.

// freePort returns a loopback port that was free a moment ago, for TCP or
// UDP.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		// Servers listen on TCP at their UDP port too: pick one free for
		// both.
		for range 100 {
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			port := c.LocalAddr().(*net.UDPAddr).Port
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			_ = c.Close()
			if err == nil {
				_ = ln.Close()
				return port
			}
		}
		t.Fatal("no port free for both UDP and TCP")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// loopStatus reads a client's status page.
func loopStatus(addr string) (connet.ClientStatus, error) {
	var st connet.ClientStatus
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}

// logRecords parses every line of a JSON log; a line that is not JSON
// fails the test.
func logRecords(t *testing.T, p *operatorProc) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.output()))
	for sc.Scan() {
		if sc.Text() == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Errorf("%s: line is not JSON: %q", p.name, sc.Text())
			continue
		}
		out = append(out, rec)
	}
	return out
}

// records returns the records with message msg.
func records(recs []map[string]any, msg string) []map[string]any {
	var out []map[string]any
	for _, r := range recs {
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// freeAddr is freePort as a loopback host:port.
func freeAddr(t *testing.T, network string) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, network)))
}

// echoThrough sends payload to addr while reading, half-closes, and
// returns everything read back until the far end closed.
func echoThrough(addr string, payload []byte) ([]byte, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		_, _ = conn.Write(payload)
		_ = conn.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(conn)
	if err == nil && len(got) == 0 {
		err = errors.New("closed with no data")
	}
	return got, err
}
