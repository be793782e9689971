package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/testprog"
)

// The tests in this file run the binary on loopback only, without a lab:
// what they check (status pages, metrics, `connet status`) does not depend
// on NATs. Ports are taken free from the kernel just before use.

// freePort returns a loopback port that was free for network ("tcp" or
// "udp") a moment ago.
func freePort(t *testing.T, network string) string {
	t.Helper()
	var addr net.Addr
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = c.LocalAddr()
		_ = c.Close()
	default:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr()
		_ = ln.Close()
	}
	return addr.String()
}

// loopbackProc is a connet process on this host.
type loopbackProc struct {
	cmd  *exec.Cmd
	out  *testprog.LockedBuffer
	done chan struct{}
}

// startConnet runs the binary with args until the test ends (or kill).
func startConnet(t *testing.T, args ...string) *loopbackProc {
	t.Helper()
	p := &loopbackProc{cmd: exec.Command(connetBin, args...), out: &testprog.LockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("connet %s:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// kill ends the process with SIGKILL: nothing it would send on a clean
// stop reaches its peers.
func (p *loopbackProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// runConnet runs the binary to its end and returns its output and exit
// code, failing the test if it runs past a 10 s bound.
func runConnet(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, connetBin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("connet %v did not end within 10 s", args)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// waitPage polls the JSON status page at addr into v until ok(v), or fails
// the test after limit.
func waitPage[T any](t *testing.T, addr string, limit time.Duration, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var v T
		err := getPage(addr, &v)
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("status at %s after %v: %+v (err %v)", addr, limit, v, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getPage(addr string, v any) error {
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// TestStatusOfSplitDeployment runs a control server and a relay apart: the
// relay's page shows its control connection, the control's page the relay,
// and once the relay is killed (no close reaches the control server) the
// control's page stops showing it within the silence limit, well before
// QUIC's idle timeout would have dropped it.
func TestStatusOfSplitDeployment(t *testing.T) {
	dir := t.TempDir()
	cert, err := testcert.New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := cert.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	relayControl, controlStatus, relayStatus := freePort(t, "udp"), freePort(t, "tcp"), freePort(t, "tcp")
	relayIngress := freePort(t, "udp")
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	control := write("control.toml", fmt.Sprintf(`
[control]
clients-tokens = ["token-a"]
relays-tokens = ["relay-token"]
status-addr = %q
store-dir = %q
[[control.clients-ingress]]
addr = %q
cert-file = %q
key-file = %q
[[control.relays-ingress]]
addr = %q
cert-file = %[4]q
key-file = %[5]q
`, controlStatus, filepath.Join(dir, "control-store"), freePort(t, "udp"), certFile, keyFile, relayControl))
	relay := write("relay.toml", fmt.Sprintf(`
[relay]
token = "relay-token"
control-addr = %q
control-cas-file = %q
status-addr = %q
store-dir = %q
[[relay.ingress]]
addr = %q
hostports = [%[5]q]
`, relayControl, certFile, relayStatus, filepath.Join(dir, "relay-store"), relayIngress))

	startConnet(t, "control", "--config", control)
	relayProc := startConnet(t, "relay", "--config", relay)

	rs := waitPage(t, relayStatus, 10*time.Second, func(s connet.RelayServerStatus) bool { return s.Control.Connected })
	if rs.Kind != "relay" || rs.Version == "" || rs.Started.IsZero() || rs.Control.Server != relayControl || rs.Control.Since.IsZero() {
		t.Fatalf("relay page: kind %q, version %q, started %v, control %+v", rs.Kind, rs.Version, rs.Started, rs.Control)
	}
	cs := waitPage(t, controlStatus, 10*time.Second, func(s connet.ServerStatus) bool { return len(s.Control.Relays) == 1 })
	joined := cs.Control.Relays[0]
	if cs.Kind != "control" || cs.Version == "" || joined.ID != rs.ID || joined.InProcess || joined.Remote == "" || joined.Version != rs.Version {
		t.Fatalf("control page: kind %q, version %q, relay %+v (relay id %s)", cs.Kind, cs.Version, joined, rs.ID)
	}

	out, errOut, code := runConnet(t, "status", relayStatus)
	if code != 0 || !strings.HasPrefix(out, "connet relay "+rs.ID+", version ") || !strings.Contains(out, "control  "+relayControl+"  connected since") {
		t.Fatalf("connet status of the relay: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runConnet(t, "status", controlStatus)
	if code != 0 || !strings.HasPrefix(out, "connet control, version ") || !strings.Contains(out, rs.ID) || !strings.Contains(out, joined.Remote) {
		t.Fatalf("connet status of the control server: exit %d\n%s%s", code, out, errOut)
	}

	relayProc.kill(t)
	// QUIC's idle timeout is 30 s; the silence limit about 8.
	waitPage(t, controlStatus, 20*time.Second, func(s connet.ServerStatus) bool { return len(s.Control.Relays) == 0 })

	out, errOut, code = runConnet(t, "status", relayStatus)
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "connet: no status server at "+relayStatus) {
		t.Fatalf("connet status of the killed relay: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
