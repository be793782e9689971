package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/testcert"
)

// The tests in this file run the binary on the host's loopback, as a new
// user would from a shell, and check what the user sees: the exit code,
// the lines on stderr, and that the process ended before a bound (it must
// never hang on a mistake).

// exitBound is how long a process may take to end on its own or after a
// signal; the behaviour under test takes milliseconds.
const exitBound = 10 * time.Second

// operatorProc is a connet process with its output (stdout and stderr)
// collected.
type operatorProc struct {
	t      *testing.T
	name   string // what the test calls it, for messages
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
}

func (p *operatorProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func (p *operatorProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// startConnet starts the binary with args. Its cache and temporary
// directories are the test's own (tmp), so nothing lands in the host's.
// When the test ends the process is interrupted, and killed by its PID if
// it has not ended within exitBound.
func startConnet(t *testing.T, tmp string, args ...string) *operatorProc {
	t.Helper()
	p := &operatorProc{t: t, name: "connet", cmd: exec.Command(connetBin, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "CONNET_CACHE_DIR="+filepath.Join(tmp, "cache"), "CONNET_STATE_DIR=", "STATE_DIRECTORY=")
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

// startNamed is startConnet in a temporary directory of its own, with a
// name for messages.
func startNamed(t *testing.T, name string, args ...string) *operatorProc {
	t.Helper()
	p := startConnet(t, t.TempDir(), args...)
	p.name = name
	return p
}

// stop interrupts the process and waits for it to end, killing it if it
// has not within exitBound.
func (p *operatorProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(exitBound):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exit waits for the process to end and returns its exit code; the test
// fails if that takes longer than exitBound.
func (p *operatorProc) exit() int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(exitBound):
		p.t.Fatalf("connet %v still running after %v; stderr:\n%s", p.cmd.Args[1:], exitBound, p.output())
		return -1
	}
}

// signal sends sig and returns the exit code.
func (p *operatorProc) signal(sig os.Signal) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	return p.exit()
}

// waitFor waits until the output holds text.
func (p *operatorProc) waitFor(text string) {
	p.t.Helper()
	p.waitLine(fmt.Sprintf("%q", text), func(l string) bool { return strings.Contains(l, text) })
}

// waitLine waits until the output has a line that ok accepts, for at most
// exitBound, and returns it; what names the line for the failure message.
func (p *operatorProc) waitLine(what string, ok func(line string) bool) string {
	p.t.Helper()
	deadline := time.Now().Add(exitBound)
	for {
		for _, l := range strings.Split(p.output(), "\n") {
			if ok(l) {
				return l
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s %v ended before logging %s; output:\n%s", p.name, p.cmd.Args[1:], what, p.output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s %v did not log %s within %v; output:\n%s", p.name, p.cmd.Args[1:], what, exitBound, p.output())
		}
	}
}

// errorLines are the lines connet printed itself (not log records).
func (p *operatorProc) errorLines() []string {
	var out []string
	for _, l := range strings.Split(p.output(), "\n") {
		if strings.HasPrefix(l, "connet: ") {
			out = append(out, l)
		}
	}
	return out
}

// holdUDP binds a loopback UDP port that answers nothing and returns its
// address: a taken port, or a server that is not there.
func holdUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.LocalAddr().String()
}

func holdTCP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l.Addr().String()
}

func localhostCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	cert, err := testcert.New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err = cert.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestStartFailureExitsAtOnce starts servers, control servers and relays
// with one of their sockets taken: each must exit 1 at once with the bind
// error, and leave no temporary store directory behind.
func TestStartFailureExitsAtOnce(t *testing.T) {
	certFile, keyFile := localhostCert(t)
	certs := []string{"--cert-file", certFile, "--key-file", keyFile}
	controlCerts := []string{"--clients-cert-file", certFile, "--clients-key-file", keyFile, "--relays-cert-file", certFile, "--relays-key-file", keyFile}
	relayHost := []string{"--relay-hostports", "127.0.0.1:1"}
	for _, tt := range []struct {
		name string
		args func(udp, tcp string) []string
		// taken returns the address the error must name.
		taken func(udp, tcp string) string
	}{
		{"server control port", func(udp, _ string) []string {
			return append([]string{"server", "--tokens", "x", "--addr", udp, "--relay-addr", "127.0.0.1:0"}, append(certs, relayHost...)...)
		}, func(udp, _ string) string { return udp }},
		{"server relay port", func(udp, _ string) []string {
			return append([]string{"server", "--tokens", "x", "--addr", "127.0.0.1:0", "--relay-addr", udp}, certs...)
		}, func(udp, _ string) string { return udp }},
		{"server status port", func(_, tcp string) []string {
			return append([]string{"server", "--tokens", "x", "--addr", "127.0.0.1:0", "--relay-addr", "127.0.0.1:0", "--status-addr", tcp}, append(certs, relayHost...)...)
		}, func(_, tcp string) string { return tcp }},
		{"control clients port", func(udp, _ string) []string {
			return append([]string{"control", "--clients-tokens", "x", "--relays-tokens", "r", "--clients-addr", udp, "--relays-addr", "127.0.0.1:0"}, controlCerts...)
		}, func(udp, _ string) string { return udp }},
		{"control relays port", func(udp, _ string) []string {
			return append([]string{"control", "--clients-tokens", "x", "--relays-tokens", "r", "--clients-addr", "127.0.0.1:0", "--relays-addr", udp}, controlCerts...)
		}, func(udp, _ string) string { return udp }},
		{"relay ingress port", func(udp, _ string) []string {
			return []string{"relay", "--token", "r", "--control-addr", freeAddr(t, "udp"), "--addr", udp, "--hostports", "127.0.0.1:1"}
		}, func(udp, _ string) string { return udp }},
		{"relay status port", func(_, tcp string) []string {
			return []string{"relay", "--token", "r", "--control-addr", freeAddr(t, "udp"), "--addr", "127.0.0.1:0", "--hostports", "127.0.0.1:1", "--status-addr", tcp}
		}, func(_, tcp string) string { return tcp }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			udp, tcp := holdUDP(t), holdTCP(t)
			tmp := t.TempDir()
			p := startConnet(t, tmp, tt.args(udp, tcp)...)
			if code := p.exit(); code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, p.output())
			}
			lines := p.errorLines()
			if len(lines) != 1 || !strings.Contains(lines[0], tt.taken(udp, tcp)) || !strings.Contains(lines[0], "address already in use") {
				t.Fatalf("want one line with the bind error of %s; stderr:\n%s", tt.taken(udp, tcp), p.output())
			}
			left, _ := filepath.Glob(filepath.Join(tmp, "connet-*"))
			if len(left) > 0 {
				t.Fatalf("temporary store left behind: %v", left)
			}
		})
	}
}

// startServer runs `connet server` on loopback with a certificate for
// localhost and 127.0.0.1 and returns its client address.
func startLoopbackServer(t *testing.T, certFile, keyFile string) (*operatorProc, string) {
	t.Helper()
	addr := freeAddr(t, "udp")
	p := startConnet(t, t.TempDir(), "server", "--tokens", "x", "--addr", addr, "--relay-addr", "127.0.0.1:0",
		"--relay-hostports", "127.0.0.1:1", "--cert-file", certFile, "--key-file", keyFile)
	p.waitFor("control server listening")
	return p, addr
}

// TestUntrustedServerEndsClient: a client that cannot verify the server's
// certificate on its first connection exits 1 with the x509 reason and a
// hint naming the setting to change.
func TestUntrustedServerEndsClient(t *testing.T) {
	certFile, keyFile := localhostCert(t)
	_, server := startLoopbackServer(t, certFile, keyFile)
	client := []string{"--token", "x", "--server-addr", server, "--direct-addr", "127.0.0.1:0", "--nat-pmp", "disabled"}
	for _, tt := range []struct {
		name, reason, hint string
		args               []string
	}{
		{"no CAs file", "x509: certificate signed by unknown authority", "set server-cas-file (--server-cas-file)", nil},
		{"wrong name", `x509: certificate is valid for localhost, not other.example`, "set server-name (--server-name)",
			[]string{"--server-cas-file", certFile, "--server-name", "other.example"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := startConnet(t, t.TempDir(), append(client, tt.args...)...)
			if code := p.exit(); code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, p.output())
			}
			lines := p.errorLines()
			if len(lines) != 2 || !strings.Contains(lines[0], "not trusted") || !strings.Contains(lines[0], tt.reason) ||
				!strings.HasPrefix(lines[1], "connet: hint: ") || !strings.Contains(lines[1], tt.hint) {
				t.Fatalf("want the reason %q and a hint %q; stderr:\n%s", tt.reason, tt.hint, p.output())
			}
			if strings.Contains(p.output(), "control connection lost") {
				t.Fatalf("a client that never connected reported a lost connection:\n%s", p.output())
			}
		})
	}
}

// TestUntrustedControlEndsRelay: the same for a relay joining its control
// server.
func TestUntrustedControlEndsRelay(t *testing.T) {
	certFile, keyFile := localhostCert(t)
	relays := freeAddr(t, "udp")
	ctl := startConnet(t, t.TempDir(), "control", "--clients-tokens", "x", "--relays-tokens", "r",
		"--clients-addr", "127.0.0.1:0", "--clients-cert-file", certFile, "--clients-key-file", keyFile,
		"--relays-addr", relays, "--relays-cert-file", certFile, "--relays-key-file", keyFile)
	ctl.waitFor("for=connet-relay-control")
	relay := []string{"relay", "--token", "r", "--control-addr", relays, "--addr", "127.0.0.1:0", "--hostports", "127.0.0.1:1"}
	for _, tt := range []struct {
		name, reason, hint string
		args               []string
	}{
		{"no CAs file", "x509: certificate signed by unknown authority", "set control-cas-file (--control-cas-file)", nil},
		{"wrong name", "x509: certificate is valid for localhost, not other.example", "set control-name (--control-name)",
			[]string{"--control-cas-file", certFile, "--control-name", "other.example"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			p := startConnet(t, tmp, append(relay, tt.args...)...)
			if code := p.exit(); code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, p.output())
			}
			lines := p.errorLines()
			if len(lines) != 2 || !strings.Contains(lines[0], tt.reason) || !strings.Contains(lines[1], tt.hint) {
				t.Fatalf("want the reason %q and a hint %q; stderr:\n%s", tt.reason, tt.hint, p.output())
			}
			if left, _ := filepath.Glob(filepath.Join(tmp, "connet-*")); len(left) > 0 {
				t.Fatalf("temporary store left behind: %v", left)
			}
		})
	}
	// With the CAs file it joins, and Ctrl-C ends it cleanly.
	p := startConnet(t, t.TempDir(), append(relay, "--control-cas-file", certFile, "--handshake-idle-timeout", "5s")...)
	p.waitFor("relay joined the control server")
	if code := p.signal(os.Interrupt); code != 0 {
		t.Fatalf("relay exit %d after Ctrl-C, want 0; stderr:\n%s", code, p.output())
	}
}

// TestInterruptExitsZero: Ctrl-C and SIGTERM end a client with 0 whether
// or not it ever reached its server. Until the first success it says it
// cannot reach the server; once connected, it retries a lost server.
func TestInterruptExitsZero(t *testing.T) {
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(fmt.Sprint(sig), func(t *testing.T) {
			// A server address that answers nothing.
			p := startConnet(t, t.TempDir(), "--token", "x", "--server-addr", holdUDP(t), "--direct-addr", "127.0.0.1:0", "--nat-pmp", "disabled",
				"--handshake-idle-timeout", "300ms")
			p.waitFor("cannot reach control server")
			if strings.Contains(p.output(), "control connection lost") {
				t.Fatalf("a client that never connected reported a lost connection:\n%s", p.output())
			}
			if code := p.signal(sig); code != 0 {
				t.Fatalf("exit %d after %v, want 0; stderr:\n%s", code, sig, p.output())
			}
		})
	}

	t.Run("after connecting", func(t *testing.T) {
		certFile, keyFile := localhostCert(t)
		srv, server := startLoopbackServer(t, certFile, keyFile)
		p := startConnet(t, t.TempDir(), "--token", "x", "--server-addr", server, "--server-cas-file", certFile,
			"--direct-addr", "127.0.0.1:0", "--nat-pmp", "disabled")
		p.waitFor("connected to control server")
		if code := srv.signal(os.Interrupt); code != 0 {
			t.Fatalf("server exit %d after Ctrl-C, want 0; stderr:\n%s", code, srv.output())
		}
		// A network failure after the first success is retried: the
		// client says the connection was lost and keeps running.
		p.waitFor("control connection lost")
		select {
		case <-p.done:
			t.Fatalf("client ended when the server went away; stderr:\n%s", p.output())
		default:
		}
		if code := p.signal(os.Interrupt); code != 0 {
			t.Fatalf("exit %d after Ctrl-C, want 0; stderr:\n%s", code, p.output())
		}
	})
}

// TestMistypedSubcommand: the binary suggests the command meant.
func TestMistypedSubcommand(t *testing.T) {
	p := startConnet(t, t.TempDir(), "sevrer")
	if code := p.exit(); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if lines := p.errorLines(); len(lines) != 1 || !strings.HasPrefix(lines[0], `connet: unknown command "sevrer" (did you mean server?)`) {
		t.Fatalf("stderr:\n%s", p.output())
	}
}
