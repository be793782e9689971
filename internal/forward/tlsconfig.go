package forward

import (
	"crypto/tls"
	"errors"

	"github.com/p2pconnet/connet/internal/config"
)

// The TLS material of endpoints: a destination dialing a TLS service is a
// TLS client, a source serving TLS is a TLS server. Files are read when the
// endpoint is built, so a missing or malformed file fails at start rather
// than on the first connection; the configuration's settings have read
// them with the same functions already, so connet check reports them too.

// clientTLS is the TLS client configuration for reaching a service named
// serverName: it trusts the CAs in casFile (PEM), or the system roots when
// casFile is empty, or nothing at all when insecure is set; it presents the
// certificate in certFile/keyFile (mutual TLS) when they are given.
//
// serverName is both the SNI and the name verified; Go sends no SNI for an
// IP address and verifies the certificate's IP SANs instead, as RFC 6066
// asks.
func clientTLS(serverName, casFile string, insecure bool, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName:         serverName,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: insecure, //nolint:gosec // the user asked for it with cas-file = "insecure-skip-verify"
	}
	if casFile != "" && !insecure {
		pool, err := config.LoadCAs(casFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := loadCertPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	} else {
		// Without a certificate, note a service's request for one, so
		// that its refusal can say what to set.
		cfg.GetClientCertificate = noCertificate
	}
	return cfg, nil
}

// serverTLS is the TLS server side of a tls/https/wss source: its
// certificate, and with a cas-file, required client certificates that must
// chain to those CAs (mutual TLS).
func serverTLS(certFile, keyFile, casFile string) (*tls.Config, error) {
	cert, err := loadCertPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	conf := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	if casFile != "" {
		pool, err := config.LoadCAs(casFile)
		if err != nil {
			return nil, err
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return conf, nil
}

// loadCertPair reads a certificate chain and its private key (PEM), with
// the function the configuration check uses.
func loadCertPair(certFile, keyFile string) (tls.Certificate, error) {
	if certFile == "" || keyFile == "" {
		return tls.Certificate{}, errors.New("cert-file and key-file must be given together")
	}
	return config.LoadKeyPair(certFile, keyFile)
}
