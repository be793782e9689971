package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

func TestNewSelfSigned(t *testing.T) {
	c, err := New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.Pool, DNSName: host}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	certFile, keyFile, err := c.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
}

func TestPKI(t *testing.T) {
	dir := t.TempDir()
	p, err := NewPKI(dir, "a")
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewPKI(dir, "b")
	if err != nil {
		t.Fatal(err)
	}
	verify := func(c *Cert, roots *x509.CertPool, usage x509.ExtKeyUsage, host string) error {
		leaf, err := x509.ParseCertificate(c.TLS.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}})
		return err
	}
	for _, host := range []string{"localhost", "127.0.0.1"} {
		if err := verify(p.Server, p.CA.Pool, x509.ExtKeyUsageServerAuth, host); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if err := verify(p.Server, p.CA.Pool, x509.ExtKeyUsageServerAuth, "example.com"); err == nil {
		t.Error("server certificate valid for a host it does not name")
	}
	if err := verify(p.Server, p.CA.Pool, x509.ExtKeyUsageClientAuth, ""); err == nil {
		t.Error("server certificate valid for client authentication")
	}
	if err := verify(p.Client, p.CA.Pool, x509.ExtKeyUsageClientAuth, ""); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if err := verify(p.Client, p.CA.Pool, x509.ExtKeyUsageServerAuth, ""); err == nil {
		t.Error("client certificate valid for server authentication")
	}
	if err := verify(other.Client, p.CA.Pool, x509.ExtKeyUsageClientAuth, ""); err == nil {
		t.Error("another PKI's client certificate chains to this CA")
	}
	if p.Client.Pool != p.CA.Pool {
		t.Error("an issued certificate's Pool is not its CA's")
	}

	// The files hold the same certificates, and the CAs file only the CA.
	for _, pair := range [][2]string{{p.ServerCert, p.ServerKey}, {p.ClientCert, p.ClientKey}} {
		if _, err := tls.LoadX509KeyPair(pair[0], pair[1]); err != nil {
			t.Error(err)
		}
	}
	pem, err := os.ReadFile(p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) || !pool.Equal(p.CA.Pool) {
		t.Errorf("%s does not hold the CA alone", p.CAFile)
	}
}

func TestIssueUnknownKind(t *testing.T) {
	ca, err := NewCA("x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue(0, "x"); err == nil {
		t.Error("Issue accepted kind 0")
	}
}
