package endpoint_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/endpoint"
)

// pki is a throwaway CA with a server certificate for 127.0.0.1/localhost
// and a client certificate, plus a client certificate from another CA
// that a mutual TLS source must refuse.
type pki struct {
	CAFile, ServerCert, ServerKey, ClientCert, ClientKey, OtherCert, OtherKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	caKey, caCert := newCA(t, "connet test CA")
	otherKey, otherCert := newCA(t, "some other CA")
	p := pki{CAFile: filepath.Join(dir, "ca.pem")}
	writePEM(t, p.CAFile, "CERTIFICATE", caCert.Raw)
	p.ServerCert, p.ServerKey = issue(t, dir, "server", caKey, caCert, x509.ExtKeyUsageServerAuth)
	p.ClientCert, p.ClientKey = issue(t, dir, "client", caKey, caCert, x509.ExtKeyUsageClientAuth)
	p.OtherCert, p.OtherKey = issue(t, dir, "other", otherKey, otherCert, x509.ExtKeyUsageClientAuth)
	return p
}

func newCA(t *testing.T, name string) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func issue(t *testing.T, dir, name string, caKey *ecdsa.PrivateKey, ca *x509.Certificate, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// logBuffer collects a source's log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitLog polls the log for a line containing all parts, for a bounded
// number of rounds (logging may trail what the client observed).
func (b *logBuffer) waitLog(t *testing.T, parts ...string) string {
	t.Helper()
	for range 500 {
		for line := range strings.SplitSeq(b.String(), "\n") {
			if containsAll(line, parts...) {
				return line
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no log line with %q in:\n%s", parts, b.String())
	return ""
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// fakeTunnel is the DialFunc of the tests: it connects to a local service
// as a destination would, counting calls and recording origins; with fail
// set it refuses like a source without destination.
type fakeTunnel struct {
	target string
	fail   error
	calls  atomic.Int64

	mu      sync.Mutex
	origins []netip.AddrPort
}

var errNoDestination = errors.New("no destination for \"web\"")

func (f *fakeTunnel) dial(ctx context.Context, origin netip.AddrPort) (net.Conn, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.origins = append(f.origins, origin)
	f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", f.target)
}

func (f *fakeTunnel) lastOrigin() netip.AddrPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.origins) == 0 {
		return netip.AddrPort{}
	}
	return f.origins[len(f.origins)-1]
}

// startEcho runs a TCP echo service until the test ends.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// startSource builds and serves a source from settings until the test
// ends, and checks that Serve then returns nil.
func startSource(t *testing.T, s config.SourceSettings, dial endpoint.DialFunc) (*endpoint.Source, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	src, err := endpoint.NewSource(s, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Serve(ctx, dial) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return src, logs
}

func settings(t *testing.T, rawURL string) config.SourceSettings {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return config.SourceSettings{Name: "web", URL: u}
}

// needProgram skips a test whose external program is missing, except on
// CI, where a missing program is a broken test setup.
func needProgram(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required on CI (Debian package %s): %v", name, debianPackage, err)
		}
		t.Skipf("%s not installed (Debian package %s)", name, debianPackage)
	}
	return path
}

// newSourceQuiet builds a source that the test does not serve.
func newSourceQuiet(s config.SourceSettings) (*endpoint.Source, error) {
	src, err := endpoint.NewSource(s, slog.New(slog.DiscardHandler))
	if err == nil {
		_ = src.Close()
	}
	return src, err
}
