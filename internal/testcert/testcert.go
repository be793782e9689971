// Package testcert makes throwaway TLS certificates for tests and demos on
// loopback or in a lab network: self-signed server certificates (New), and
// small PKIs of a CA with server and client certificates (NewCA, NewPKI).
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Cert is a certificate with its key: self-signed (New) or issued by a CA
// (CA.Issue).
type Cert struct {
	TLS tls.Certificate
	// Pool trusts the certificate: it holds the self-signed certificate
	// itself, or the CA that issued it.
	Pool *x509.CertPool
	// CertPEM and KeyPEM are the PEM encodings, for writing files.
	CertPEM, KeyPEM []byte
}

// New creates a self-signed certificate valid for the given DNS names and
// IP addresses.
func New(hosts ...string) (*Cert, error) {
	tmpl := template(hosts[0], hosts)
	tmpl.KeyUsage |= x509.KeyUsageCertSign
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	tmpl.BasicConstraintsValid, tmpl.IsCA = true, true
	c, leaf, _, err := create(tmpl, nil, nil)
	if err != nil {
		return nil, err
	}
	c.Pool = x509.NewCertPool()
	c.Pool.AddCert(leaf)
	return c, nil
}

// WriteFiles writes cert.pem and key.pem into dir and returns their paths.
func (c *Cert) WriteFiles(dir string) (certFile, keyFile string, err error) {
	return c.writeFiles(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
}

func (c *Cert) writeFiles(certFile, keyFile string) (string, string, error) {
	if err := os.WriteFile(certFile, c.CertPEM, 0o644); err != nil {
		return "", "", fmt.Errorf("testcert: %w", err)
	}
	if err := os.WriteFile(keyFile, c.KeyPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("testcert: %w", err)
	}
	return certFile, keyFile, nil
}

// CA is a throwaway certificate authority.
type CA struct {
	Cert *x509.Certificate
	// Pool trusts this CA alone.
	Pool *x509.CertPool
	// CertPEM is the CA certificate's PEM encoding, for a CAs file.
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// NewCA creates a self-signed CA with the common name name.
func NewCA(name string) (*CA, error) {
	tmpl := template(name, nil)
	tmpl.KeyUsage |= x509.KeyUsageCertSign
	tmpl.BasicConstraintsValid, tmpl.IsCA = true, true
	c, cert, key, err := create(tmpl, nil, nil)
	if err != nil {
		return nil, err
	}
	ca := &CA{Cert: cert, Pool: x509.NewCertPool(), CertPEM: c.CertPEM, key: key}
	ca.Pool.AddCert(cert)
	return ca, nil
}

// Kind is what a certificate issued by a CA is for.
type Kind int

const (
	// Server certificates are for TLS servers (ServerAuth), valid for the
	// hosts given to Issue.
	Server Kind = iota + 1
	// Client certificates are for TLS clients (ClientAuth).
	Client
)

// Issue creates a certificate of the given kind signed by ca, with the
// common name name and the hosts (DNS names and IP addresses) as subject
// alternative names. Its Pool is ca.Pool.
func (ca *CA) Issue(kind Kind, name string, hosts ...string) (*Cert, error) {
	tmpl := template(name, hosts)
	switch kind {
	case Server:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case Client:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	default:
		return nil, fmt.Errorf("testcert: unknown certificate kind %d", kind)
	}
	c, _, _, err := create(tmpl, ca.Cert, ca.key)
	if err != nil {
		return nil, err
	}
	c.Pool = ca.Pool
	return c, nil
}

// PKI is a CA with a server certificate for localhost and 127.0.0.1 and a
// client certificate, in memory and as PEM files.
type PKI struct {
	CA             *CA
	Server, Client *Cert
	// The PEM files: the CA certificate, and each certificate with its key.
	CAFile, ServerCert, ServerKey, ClientCert, ClientKey string
}

// NewPKI creates the CA "<name> CA", which issues the server certificate
// "server-<name>" for localhost and 127.0.0.1 and the client certificate
// "client-<name>", and writes them into dir as <name>-ca.pem,
// <name>-server.pem, <name>-server.key, <name>-client.pem and
// <name>-client.key. PKIs of different names share no trust and may share
// a directory.
func NewPKI(dir, name string) (*PKI, error) {
	ca, err := NewCA(name + " CA")
	if err != nil {
		return nil, err
	}
	p := &PKI{CA: ca, CAFile: filepath.Join(dir, name+"-ca.pem")}
	if p.Server, err = ca.Issue(Server, "server-"+name, "localhost", "127.0.0.1"); err != nil {
		return nil, err
	}
	if p.Client, err = ca.Issue(Client, "client-"+name); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.CAFile, ca.CertPEM, 0o644); err != nil {
		return nil, fmt.Errorf("testcert: %w", err)
	}
	file := filepath.Join(dir, name)
	if p.ServerCert, p.ServerKey, err = p.Server.writeFiles(file+"-server.pem", file+"-server.key"); err != nil {
		return nil, err
	}
	if p.ClientCert, p.ClientKey, err = p.Client.writeFiles(file+"-client.pem", file+"-client.key"); err != nil {
		return nil, err
	}
	return p, nil
}

// template is a certificate template valid from an hour ago for a day,
// for digital signatures, with hosts as DNS and IP subject alternative
// names.
func template(commonName string, hosts []string) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return tmpl
}

// create makes a new key and a certificate for it from tmpl, signed by
// parent's key, or self-signed when parent is nil.
func create(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*Cert, *x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	c := &Cert{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	if c.TLS, err = tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
		return nil, nil, nil, err
	}
	return c, cert, key, nil
}
