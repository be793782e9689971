package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/testprog"
)

// The tests in this file run the binary on loopback only, without a lab:
// what they check (status pages, metrics, `connet status`) does not depend
// on NATs. Ports are taken free from the kernel just before use.

// kill ends p with SIGKILL: nothing it would send on a clean stop reaches
// its peers.
func kill(t *testing.T, p *operatorProc) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// logOnFailure shows the processes' stderr if the test fails.
func logOnFailure(t *testing.T, procs map[string]*operatorProc) {
	t.Cleanup(func() {
		if t.Failed() {
			for name, p := range procs {
				t.Logf("%s:\n%s", name, p.output())
			}
		}
	})
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
	relayControl, controlStatus, relayStatus := freeAddr(t, "udp"), freeAddr(t, "tcp"), freeAddr(t, "tcp")
	relayIngress := freeAddr(t, "udp")
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
`, controlStatus, filepath.Join(dir, "control-store"), freeAddr(t, "udp"), certFile, keyFile, relayControl))
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

	procs := map[string]*operatorProc{
		"control": startConnet(t, dir, "control", "--config", control),
		"relay":   startConnet(t, dir, "relay", "--config", relay),
	}
	logOnFailure(t, procs)

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

	kill(t, procs["relay"])
	// QUIC's idle timeout is 30 s; the silence limit about 8.
	waitPage(t, controlStatus, 20*time.Second, func(s connet.ServerStatus) bool { return len(s.Control.Relays) == 0 })

	out, errOut, code = runConnet(t, "status", relayStatus)
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "connet: no status server at "+relayStatus) {
		t.Fatalf("connet status of the killed relay: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestClientStatusAndMetrics tunnels data between two clients run by the
// binary, then reads the source client's /metrics (connections and bytes,
// counted from the source's splice) and its status through `connet
// status`, as a table and as JSON.
func TestClientStatusAndMetrics(t *testing.T) {
	dir := t.TempDir()
	cert, err := testcert.New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := cert.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	control := freeAddr(t, "udp")
	server := write("server.toml", fmt.Sprintf(`
[server]
tokens = ["token-d", "token-s"]
store-dir = %q
[[server.ingress]]
addr = %q
cert-file = %q
key-file = %q
`, filepath.Join(dir, "store"), control, certFile, keyFile))
	client := func(name, token, statusAddr, endpoint string) string {
		return write(name, fmt.Sprintf(`
[client]
token = %q
server-addr = %q
server-cas-file = %q
direct-addr = %q
status-addr = %q
nat-pmp = "disabled"
%s
`, token, control, certFile, freeAddr(t, "udp"), statusAddr, endpoint))
	}
	service := testprog.ServeTCPEcho(t)
	sourceAddr, dstStatus, srcStatus := freeAddr(t, "tcp"), freeAddr(t, "tcp"), freeAddr(t, "tcp")
	dst := client("dst.toml", "token-d", dstStatus, fmt.Sprintf("[client.destinations.echo]\nurl = \"tcp://%s\"", service))
	src := client("src.toml", "token-s", srcStatus, fmt.Sprintf("[client.sources.echo]\nurl = \"tcp://%s\"", sourceAddr))
	logOnFailure(t, map[string]*operatorProc{
		"server":      startConnet(t, dir, "server", "--config", server),
		"destination": startConnet(t, dir, "--config", dst),
		"source":      startConnet(t, dir, "--config", src),
	})

	payload := make([]byte, 1<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := echoThrough(sourceAddr, payload)
		if err == nil && !bytes.Equal(got, payload) {
			err = fmt.Errorf("echo of %d bytes, sent %d", len(got), len(payload))
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no echo through the tunnel: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Failed attempts while the peers were finding each other are not
	// tunnelled connections: exactly one was, and it is closed.
	n := float64(len(payload))
	var m testprog.Metrics
	deadline = time.Now().Add(10 * time.Second)
	for {
		m, err = testprog.Scrape(context.Background(), "http://"+srcStatus+"/metrics")
		if err == nil {
			sent, _ := m.Value("connet_client_bytes_total", "endpoint", "echo", "role", "source", "direction", "sent")
			received, _ := m.Value("connet_client_bytes_total", "endpoint", "echo", "role", "source", "direction", "received")
			if sent == n && received == n {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("source's bytes never reached %v each way (err %v)", n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var total, active float64
	for _, kind := range []string{"direct-outgoing", "direct-incoming", "relay"} {
		v, _ := m.Value("connet_client_connections_total", "endpoint", "echo", "role", "source", "path", kind)
		a, _ := m.Value("connet_client_connections_active", "endpoint", "echo", "role", "source", "path", kind)
		total, active = total+v, active+a
	}
	if total != 1 || active != 0 {
		t.Fatalf("source connections: %v total, %v active; want 1 and 0", total, active)
	}
	if v, ok := m.Value("connet_client_path_setup_seconds", "kind", "direct"); !ok || v < 1 {
		t.Fatalf("no direct path setup counted (%v, %v)", v, ok)
	}

	var doc connet.ClientStatus
	if err := getPage(srcStatus, &doc); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runConnet(t, "status", "--config", src)
	if code != 0 {
		t.Fatalf("connet status: exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "connet client "+doc.ID+", version ") || !strings.Contains(out, "connected since") {
		t.Fatalf("connet status head:\n%s", out)
	}
	peer := doc.Sources[0].Peers[0]
	row := strings.Fields(tableRow(out, "echo"))
	// The row shows the best path when connet status read the page; both
	// directions may have punched through, and which one is best can
	// change between that read and doc's (the redundant one is retired
	// seconds later), so the row's path must be one of doc's.
	onePath := func(kind, remote string) bool {
		return slices.ContainsFunc(peer.Paths, func(p connet.PathStatus) bool { return p.Kind == kind && p.Remote == remote })
	}
	if len(row) < 8 || row[1] != "source" || row[3] != "0/1" || row[4] != peer.ID || !onePath(row[5], row[6]) {
		t.Fatalf("endpoint row %q does not show the source, its peer and one of its paths %+v:\n%s", row, peer.Paths, out)
	}

	out, errOut, code = runConnet(t, "status", "--json", srcStatus)
	var raw connet.ClientStatus
	if err := json.Unmarshal([]byte(out), &raw); code != 0 || err != nil || raw.Kind != "client" || raw.ID != doc.ID {
		t.Fatalf("connet status --json: exit %d, %v, kind %q\n%s%s", code, err, raw.Kind, out, errOut)
	}
}

// tableRow is the first line of out that starts with first.
func tableRow(out, first string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, first+" ") {
			return l
		}
	}
	return ""
}
