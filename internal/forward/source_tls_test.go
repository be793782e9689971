package forward_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/testprog"
)

func clientTLS(t *testing.T, p pki, certFile, keyFile string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	conf := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		// Always offer it, even when it does not chain to a CA the
		// server names, so a wrong certificate reaches the server.
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return conf
}

// echoOverTLS sends msg through a TLS connection to addr and reads the echo.
func echoOverTLS(addr string, conf *tls.Config, msg string) (string, net.Addr, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, conf)
	if err != nil {
		return "", nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return "", nil, err
	}
	if err := c.CloseWrite(); err != nil {
		return "", nil, err
	}
	got, err := io.ReadAll(c)
	return string(got), c.LocalAddr(), err
}

func TestSourceTLS(t *testing.T) {
	p := newPKI(t)
	ft := &fakeTunnel{target: testprog.ServeTCPEcho(t)}
	s := settings(t, "tls://127.0.0.1:0")
	s.CertFile, s.KeyFile = p.ServerCert, p.ServerKey
	src, _ := startSource(t, s, ft.dial)

	got, local, err := echoOverTLS(src.Addr().String(), clientTLS(t, p, "", ""), "hello over tls")
	if err != nil || got != "hello over tls" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	if o := ft.lastOrigin(); o.String() != local.String() {
		t.Fatalf("origin %v, want the client's address %v", o, local)
	}
}

func TestSourceTLSMutual(t *testing.T) {
	p := newPKI(t)
	ft := &fakeTunnel{target: testprog.ServeTCPEcho(t)}
	s := settings(t, "tls://127.0.0.1:0")
	s.CertFile, s.KeyFile, s.CAsFile = p.ServerCert, p.ServerKey, p.CAFile
	src, logs := startSource(t, s, ft.dial)
	addr := src.Addr().String()

	for _, bad := range []struct{ name, cert, key, reason string }{
		{"no client certificate", "", "", "certificate"},
		{"certificate of another CA", p.OtherCert, p.OtherKey, "x509"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			got, local, err := echoOverTLS(addr, clientTLS(t, p, bad.cert, bad.key), "let me in")
			if err == nil {
				t.Fatalf("echo without a valid client certificate: %q", got)
			}
			client := ""
			if local != nil {
				client = "client=" + local.String()
			}
			line := logs.waitLog(t, "level=WARN", client, "TLS handshake", bad.reason)
			t.Logf("refused as expected (%v); logged: %s", err, line)
		})
	}
	if n := ft.calls.Load(); n != 0 {
		t.Fatalf("%d tunnels opened for refused clients, want none", n)
	}
	// The source keeps serving good clients.
	got, _, err := echoOverTLS(addr, clientTLS(t, p, p.ClientCert, p.ClientKey), "hello mtls")
	if err != nil || got != "hello mtls" {
		t.Fatalf("echo with a good client certificate: %q, %v", got, err)
	}
}

func TestSourceTLSBadFilesFailAtStart(t *testing.T) {
	p := newPKI(t)
	for name, mod := range map[string]func(s *sourceFiles){
		"missing cert": func(s *sourceFiles) { s.cert = "/nonexistent/cert.pem" },
		"key mismatch": func(s *sourceFiles) { s.key = p.OtherKey },
		"missing cas":  func(s *sourceFiles) { s.cas = "/nonexistent/ca.pem" },
		"cas not pem":  func(s *sourceFiles) { s.cas = p.ServerKey },
	} {
		t.Run(name, func(t *testing.T) {
			f := sourceFiles{p.ServerCert, p.ServerKey, p.CAFile}
			mod(&f)
			s := settings(t, "tls://127.0.0.1:0")
			s.CertFile, s.KeyFile, s.CAsFile = f.cert, f.key, f.cas
			if _, err := newSourceQuiet(s); err == nil {
				t.Fatal("NewSource accepted bad TLS files")
			} else {
				t.Log(err)
			}
		})
	}
}

type sourceFiles struct{ cert, key, cas string }
