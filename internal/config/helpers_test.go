package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/config"
)

// writeFile creates dir/name with content and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// certFiles holds the paths of a freshly generated self-signed certificate.
type certFiles struct {
	Cert, Key string
}

// writeCert generates a self-signed ECDSA certificate for localhost and
// writes it as prefix.cert.pem / prefix.key.pem in dir.
func writeCert(t *testing.T, dir, prefix string) certFiles {
	t.Helper()
	certPEM, keyPEM := genCert(t)
	return certFiles{
		Cert: writeFile(t, dir, prefix+".cert.pem", string(certPEM)),
		Key:  writeFile(t, dir, prefix+".key.pem", string(keyPEM)),
	}
}

func genCert(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// envMap turns a map into an injectable environment.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// load writes content to dir/name and loads it, failing the test on error.
func load(t *testing.T, dir, name, content string) *config.Config {
	t.Helper()
	cfg, err := config.Load(writeFile(t, dir, name, content))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

// wantErrors checks that err holds exactly one *config.Error per entry of
// want (in any order), each matching origin/key and containing the reason
// fragment. It keeps tests readable while still pinning every field.
func wantErrors(t *testing.T, err error, want ...wantErr) {
	t.Helper()
	got := config.Errors(err)
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("expected errors %v, got none", want)
	}
	if len(got) != len(want) {
		t.Fatalf("expected %d errors, got %d:\n%v", len(want), len(got), err)
	}
	used := make([]bool, len(got))
outer:
	for _, w := range want {
		for i, g := range got {
			if !used[i] && w.matches(g) {
				used[i] = true
				continue outer
			}
		}
		t.Errorf("no error matching %+v in:\n%v", w, err)
	}
}

type wantErr struct {
	Origin string // exact; "-" means "don't care"
	Key    string // exact
	Reason string // substring of Error()
}

func (w wantErr) matches(e *config.Error) bool {
	return (w.Origin == "-" || e.Origin == w.Origin) && e.Key == w.Key && strings.Contains(e.Error(), w.Reason)
}

// singleError returns the only *config.Error in err.
func singleError(t *testing.T, err error) *config.Error {
	t.Helper()
	errs := config.Errors(err)
	if len(errs) != 1 {
		t.Fatalf("expected exactly one error, got %d: %v", len(errs), err)
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("errors.As failed for %v", err)
	}
	return errs[0]
}

func readFileT(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
