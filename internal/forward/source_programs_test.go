package forward_test

// These tests drive the sources with real programs (curl, openssl
// s_client, python3-websockets), the clients users actually point at them.

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/testprog"
)

// programTimeout bounds every external program; CommandContext kills it
// (by PID) when it runs over or the test ends.
const programTimeout = 30 * time.Second

func runProgram(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), programTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

func TestSourceHTTPWithCurl(t *testing.T) {
	curl := testprog.Need(t, "curl", "curl")
	p := newPKI(t)
	svc, last := startHTTPService(t)
	ft := &fakeTunnel{target: svc}

	plain, _ := startSource(t, settings(t, "http://127.0.0.1:0/path"), ft.dial)
	out, err := runProgram(t, curl, "-sS", "--fail-with-body", "--data-binary", "curl plain", "http://"+plain.Addr().String()+"/x")
	if err != nil || out != "curl plain" {
		t.Fatalf("curl http: %q, %v", out, err)
	}
	if s := last(); s.path != "/path/x" || s.xff != "127.0.0.1" {
		t.Fatalf("service saw %+v", s)
	}

	s := settings(t, "https://127.0.0.1:0")
	s.CertFile, s.KeyFile = p.ServerCert, p.ServerKey
	tlsSrc, _ := startSource(t, s, ft.dial)
	out, err = runProgram(t, curl, "-sS", "--fail-with-body", "--cacert", p.CAFile, "--data-binary", "curl tls", "https://"+tlsSrc.Addr().String()+"/")
	if err != nil || out != "curl tls" {
		t.Fatalf("curl https: %q, %v", out, err)
	}

	s.CAsFile = p.CAFile
	mtls, _ := startSource(t, s, ft.dial)
	url := "https://" + mtls.Addr().String() + "/"
	if out, err := runProgram(t, curl, "-sS", "--cacert", p.CAFile, url); err == nil {
		t.Fatalf("curl without a client certificate got through: %q", out)
	}
	out, err = runProgram(t, curl, "-sS", "--fail-with-body", "--cacert", p.CAFile, "--cert", p.ClientCert, "--key", p.ClientKey, "--data-binary", "curl mtls", url)
	if err != nil || out != "curl mtls" {
		t.Fatalf("curl https with client certificate: %q, %v", out, err)
	}

	down, logs := startSource(t, settings(t, "http://127.0.0.1:0"), (&fakeTunnel{fail: errServiceRefused}).dial)
	out, err = runProgram(t, curl, "-sS", "-o", "-", "-w", "\n%{http_code}", "http://"+down.Addr().String()+"/")
	if err != nil || !strings.HasSuffix(out, "\n502") || !strings.Contains(out, "(endpoint-refused)") {
		t.Fatalf("curl without destination: %q, %v", out, err)
	}
	if strings.Contains(out, "peer-3f9a1c7b") || strings.Contains(out, "10.1.2.3") {
		t.Fatalf("the 502 shows the peer or the service's address: %q", out)
	}
	logs.waitLog(t, "level=WARN", "peer-3f9a1c7b", "10.1.2.3:8080")
}

// sClientEcho runs openssl s_client against addr, sends a line and waits
// for it to come back (echoed=true), or for s_client to end.
func sClientEcho(t *testing.T, openssl, addr string, extra ...string) (echoed bool, output string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), programTimeout)
	defer cancel()
	return testprog.SClientEcho(t, exec.CommandContext(ctx, openssl, testprog.SClientArgs(addr, extra...)...))
}

func TestSourceTLSWithOpenSSL(t *testing.T) {
	openssl := testprog.Need(t, "openssl", "openssl")
	p := newPKI(t)
	ft := &fakeTunnel{target: testprog.ServeTCPEcho(t)}
	s := settings(t, "tls://127.0.0.1:0")
	s.CertFile, s.KeyFile, s.CAsFile = p.ServerCert, p.ServerKey, p.CAFile
	src, logs := startSource(t, s, ft.dial)
	addr := src.Addr().String()

	if echoed, out := sClientEcho(t, openssl, addr, "-CAfile", p.CAFile); echoed {
		t.Fatalf("s_client without a client certificate was echoed:\n%s", out)
	}
	logs.waitLog(t, "level=WARN", "TLS handshake", "certificate")
	if echoed, out := sClientEcho(t, openssl, addr, "-CAfile", p.CAFile, "-cert", p.OtherCert, "-key", p.OtherKey); echoed {
		t.Fatalf("s_client with a foreign client certificate was echoed:\n%s", out)
	}
	logs.waitLog(t, "level=WARN", "TLS handshake", "x509")
	if echoed, out := sClientEcho(t, openssl, addr, "-CAfile", p.CAFile, "-cert", p.ClientCert, "-key", p.ClientKey); !echoed {
		t.Fatalf("s_client with a good client certificate got no echo:\n%s", out)
	}
}

func TestSourceWSWithPython(t *testing.T) {
	python := testprog.NeedPythonWebsockets(t)
	ft := &fakeTunnel{target: testprog.ServeTCPEcho(t)}
	src, _ := startSource(t, settings(t, "ws://127.0.0.1:0"), ft.dial)
	argv := testprog.PythonWebSocketEcho(python, "ws://"+src.Addr().String()+"/")
	out, err := runProgram(t, argv[0], argv[1:]...)
	if err != nil || !strings.HasPrefix(out, "ok 102400") {
		t.Fatalf("python websockets: %q, %v", out, err)
	}
}
