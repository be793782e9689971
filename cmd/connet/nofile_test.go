package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/testprog"
	"go.uber.org/goleak"
)

// nofileEnv, when set, makes this test binary run connet's main with its
// arguments, under the RLIMIT_NOFILE it names, instead of the tests: a
// real connet process with few file descriptors.
const nofileEnv = "CONNET_TEST_NOFILE"

func TestMain(m *testing.M) {
	if v := os.Getenv(nofileEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err == nil {
			// Soft and hard limit both: Go raises the soft limit to the
			// hard one when a program starts.
			err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "connet test child:", err)
			os.Exit(2)
		}
		main()
	}
	// The tests that run connet in process must leave no goroutine
	// behind once what they started has stopped.
	goleak.VerifyTestMain(m)
}

// limitedServer is a `connet server` process under a low RLIMIT_NOFILE.
type limitedServer struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	mu      sync.Mutex
	lines   []map[string]any
	tcpAddr string
	ready   chan struct{}
}

// startLimitedServer runs `connet server --config config` with nofile
// descriptors at most, and waits until its client ingress listens on TCP.
// The process is stopped (SIGTERM, then SIGKILL) when the test ends.
func startLimitedServer(t *testing.T, config string, nofile int) *limitedServer {
	t.Helper()
	s := &limitedServer{exited: make(chan struct{}), ready: make(chan struct{})}
	s.cmd = exec.Command(os.Args[0], "server", "--config", config)
	s.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", nofileEnv, nofile))
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		s.scan(stderr)
	}()
	go func() {
		<-read
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
	select {
	case <-s.ready:
	case <-s.exited:
		t.Fatalf("the server exited at start:\n%s", s.log())
	case <-time.After(20 * time.Second):
		t.Fatalf("the server not listening on TCP after 20 s:\n%s", s.log())
	}
	return s
}

// scan keeps the server's JSON log lines and notes its TCP address.
func (s *limitedServer) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			line = map[string]any{"msg": sc.Text()}
		}
		s.mu.Lock()
		s.lines = append(s.lines, line)
		if line["msg"] == "control server listening" && line["transport"] == "tcp" && s.tcpAddr == "" {
			s.tcpAddr, _ = line["addr"].(string)
			close(s.ready)
		}
		s.mu.Unlock()
	}
}

// logged returns the first log line with msg, if any.
func (s *limitedServer) logged(msg string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if l["msg"] == msg {
			return l
		}
	}
	return nil
}

func (s *limitedServer) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, l := range s.lines {
		fmt.Fprintln(&b, l)
	}
	return b.String()
}

// waitLogged waits until the server logs msg, failing if it exits first.
func (s *limitedServer) waitLogged(t *testing.T, msg string) map[string]any {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if l := s.logged(msg); l != nil {
			return l
		}
		select {
		case <-s.exited:
			t.Fatalf("the server exited before logging %q:\n%s", msg, s.log())
		case <-deadline:
			t.Fatalf("the server did not log %q in 20 s:\n%s", msg, s.log())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *limitedServer) requireRunning(t *testing.T) {
	t.Helper()
	select {
	case <-s.exited:
		t.Fatalf("the server exited:\n%s", s.log())
	default:
	}
}

// idleConns opens n TCP connections to the server from the loopback
// address from, which send nothing; they are closed when the test ends.
func (s *limitedServer) idleConns(t *testing.T, from string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := testprog.DialFrom(t, from, s.tcpAddr)
		if err != nil {
			// Refused: the server may be on its way out; say why.
			select {
			case <-s.exited:
				t.Fatalf("the server exited:\n%s", s.log())
			case <-time.After(5 * time.Second):
				t.Fatal(err)
			}
		}
		conns = append(conns, c)
	}
	return conns
}

func closeConns(conns []net.Conn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// connectOverTCP connects a client to the server, whose ingress serves
// TCP only: the client's QUIC handshake goes unanswered and it falls back
// after a second.
func connectOverTCP(t *testing.T, addr string, cert *testcert.Cert) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := connet.Connect(ctx,
		connet.ClientToken("token-1"),
		connet.ClientControlAddress(addr),
		connet.ClientControlCAs(cert.Pool),
		connet.ClientDirectAddress("127.0.0.1:0"),
		connet.ClientNatPMP(connet.NatPMPDisabled),
		connet.ClientHandshakeIdleTimeout(time.Second),
		connet.ClientLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer c.Close()
	if st := c.Status().Control; !st.Connected || st.Transport != "tcp" {
		t.Fatalf("client's control connection %+v, want connected over tcp", st)
	}
}

// TestServerOutlastsRunningOutOfFiles: a `connet server` allowed 128
// file descriptors is flooded with connections that send nothing. From
// one address, the listener keeps at most its per-address share of them
// and closes the rest at once, so a client still connects during the
// flood. From eight addresses together they use up the descriptors:
// accept fails with "too many open files", and the server logs it, waits
// and tries again instead of stopping; once the flood lets go, a client
// connects.
func TestServerOutlastsRunningOutOfFiles(t *testing.T) {
	dir := t.TempDir()
	cert, err := testcert.New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := cert.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	config := writeFile(t, dir, "server.toml", fmt.Sprintf(`log-format = "json"
[server]
tokens = ["token-1"]
store-dir = %q
[[server.ingress]]
addr = "127.0.0.1:0"
cert-file = %q
key-file = %q
transports = ["tcp"]
[[server.relay-ingress]]
# Away from the default port; no client here uses the relay.
addr = "127.0.0.1:0"
hostports = ["127.0.0.1:1"]
transports = ["quic"]
`, filepath.Join(dir, "store"), certFile, keyFile))
	srv := startLimitedServer(t, config, 128)

	oneAddr := srv.idleConns(t, "127.0.0.2", 300)
	srv.waitLogged(t, "connection refused")
	connectOverTCP(t, srv.tcpAddr, cert)
	closeConns(oneAddr)

	var many []net.Conn
	for i := range 8 {
		many = append(many, srv.idleConns(t, fmt.Sprintf("127.0.0.%d", 10+i), 40)...)
	}
	failed := srv.waitLogged(t, "accept failed, retrying")
	if err, _ := failed["err"].(string); !strings.Contains(err, "too many open files") {
		t.Fatalf("accept failed with %q, want too many open files", err)
	}
	srv.requireRunning(t)
	closeConns(many)
	connectOverTCP(t, srv.tcpAddr, cert)
	srv.requireRunning(t)
}
