// Package identity owns the certificates that identify connet clients to
// each other. Each client generates one key pair per run; the control server
// learns its certificate from the TLS handshake (so the client has proven it
// holds the key) and hands it to the client's peers, which then accept no
// other certificate from it. Trust comes from that pinning, not from a CA.
package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"fmt"
	"log/slog"
	"math/big"
	"time"
)

// ID is the SHA-256 fingerprint of a certificate's DER encoding.
type ID [32]byte

// IDOf returns the fingerprint of a DER certificate.
func IDOf(der []byte) ID { return sha256.Sum256(der) }

// ParseID converts the wire form of an ID.
func ParseID(b []byte) (ID, error) {
	var id ID
	if len(b) != len(id) {
		return id, fmt.Errorf("identity: id of %d bytes, want %d", len(b), len(id))
	}
	copy(id[:], b)
	return id, nil
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// String is a short, log-friendly form: 16 base32 characters (80 bits).
func (id ID) String() string { return idEncoding.EncodeToString(id[:10]) }

// LogValue logs an ID as its String, in JSON too (not as 32 numbers).
func (id ID) LogValue() slog.Value { return slog.StringValue(id.String()) }

// Identity is a client's certificate and key.
type Identity struct {
	Cert tls.Certificate
	ID   ID
}

// DER returns the certificate as sent to the control server and peers.
func (i *Identity) DER() []byte { return i.Cert.Certificate[0] }

// Generate creates a fresh self-signed Ed25519 identity. Ed25519 keeps
// certificates small (they travel in every peer list) and handshakes cheap.
func Generate(commonName string) (*Identity, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("identity: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		// Backdated an hour so peers with slightly wrong clocks still agree;
		// validity is not what makes the certificate trusted.
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.AddDate(1, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{commonName},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("identity: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("identity: parse certificate: %w", err)
	}
	return &Identity{
		Cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf},
		ID:   IDOf(der),
	}, nil
}
