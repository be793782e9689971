package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/testprog"
)

// These tests run the binary on this host's loopback, without a lab: they
// need neither root nor nftables.

// loopProc is a connet process whose output the test reads.
type loopProc struct {
	name   string
	out    *testprog.LockedBuffer
	exited chan struct{}
	cmd    *exec.Cmd
}

// startLoop runs connet with args until the test ends, when it is
// interrupted (and killed by its PID if it does not stop within 10 s).
func startLoop(t *testing.T, name string, args ...string) *loopProc {
	t.Helper()
	p := &loopProc{name: name, out: &testprog.LockedBuffer{}, exited: make(chan struct{}), cmd: exec.Command(connetBin, args...)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop interrupts the process and waits for it to end.
func (p *loopProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitLine waits until the output has a line that ok accepts, for at most
// 10 s, and returns it.
func (p *loopProc) waitLine(t *testing.T, what string, ok func(line string) bool) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, l := range strings.Split(p.out.String(), "\n") {
			if ok(l) {
				return l
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before logging %s:\n%s", p.name, what, p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s logged no %s within 10 s:\n%s", p.name, what, p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a loopback port that was free a moment ago, for TCP or
// UDP.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
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
func logRecords(t *testing.T, p *loopProc) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
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
