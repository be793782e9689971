package identity

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"

	"github.com/p2pconnet/connet/internal/store"
)

// LoadOrCreate keeps an identity in file (certificate and key, PEM), so a
// server keeps the certificate its peers pinned across restarts. A missing
// file gets a fresh identity.
func LoadOrCreate(file, commonName string) (*Identity, error) {
	// store.ReadFile refuses a key file that group or others can read.
	b, err := store.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		id, err := Generate(commonName)
		if err != nil {
			return nil, err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(id.Cert.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
		data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.DER()})
		data = append(data, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
		if err := store.WriteFile(file, data); err != nil {
			return nil, err
		}
		return id, nil
	}
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	// A truncated or corrupt file fails here, named.
	cert, err := tls.X509KeyPair(b, b)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w", file, err)
	}
	if _, ok := cert.PrivateKey.(ed25519.PrivateKey); !ok {
		return nil, fmt.Errorf("identity: %s: not an Ed25519 key", file)
	}
	return &Identity{Cert: cert, ID: IDOf(cert.Certificate[0])}, nil
}
