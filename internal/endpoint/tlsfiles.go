package endpoint

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// loadCertPair reads a PEM certificate (chain) and its private key.
func loadCertPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// loadCAPool reads a PEM bundle of CA certificates. A file without any
// certificate is an error: an empty pool would refuse every peer, which is
// never what a cas-file is written for.
func loadCAPool(casFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(casFile)
	if err != nil {
		return nil, fmt.Errorf("load CAs: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("load CAs %s: no PEM certificate found", casFile)
	}
	return pool, nil
}

// serverTLSConfig is the TLS server side of a tls/https/wss source: its
// certificate, and with a cas-file, required client certificates that must
// chain to those CAs (mutual TLS).
func serverTLSConfig(certFile, keyFile, casFile string) (*tls.Config, error) {
	cert, err := loadCertPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	conf := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	if casFile != "" {
		pool, err := loadCAPool(casFile)
		if err != nil {
			return nil, err
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return conf, nil
}
