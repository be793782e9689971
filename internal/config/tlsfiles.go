package config

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// The TLS files a configuration names (CA bundles, certificates and their
// keys) are read by the functions of this file both when the settings are
// resolved, which every command and connet check do first, and when an
// endpoint loads them at start (LoadCAs, LoadKeyPair), so that check and
// start cannot disagree about a file.

// fileProblem is what is wrong with one TLS file: the key naming it
// (cas-file, cert-file, key-file), why, and the underlying cause.
type fileProblem struct {
	key    string
	reason string
	err    error
}

func (p *fileProblem) Error() string {
	if p.err == nil {
		return p.key + ": " + p.reason
	}
	return p.key + ": " + p.reason + ": " + p.err.Error()
}

func (p *fileProblem) Unwrap() error { return p.err }

// LoadCAs reads a PEM bundle of CA certificates (a cas-file). A file
// without a single certificate is an error: an empty pool would reject
// every peer and hide the mistake until the first connection.
func LoadCAs(file string) (*x509.CertPool, error) {
	pool, problem := readCAs(readFile, "cas-file", file)
	if problem != nil {
		return nil, problem
	}
	return pool, nil
}

// LoadKeyPair reads a certificate chain (cert-file) and its private key
// (key-file), both PEM.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, problems := readKeyPair(readFile, certFile, keyFile)
	if len(problems) > 0 {
		return tls.Certificate{}, problems[0]
	}
	return cert, nil
}

// readCAs is LoadCAs with the file read by read; key names the file in
// problems.
func readCAs(read func(string) ([]byte, error), key, file string) (*x509.CertPool, *fileProblem) {
	data, err := read(file)
	if err != nil {
		return nil, &fileProblem{key: key, reason: "cannot read file", err: err}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, &fileProblem{key: key, reason: fmt.Sprintf("no PEM certificates found in %q", file)}
	}
	return pool, nil
}

// readKeyPair is LoadKeyPair with the files read by read. The certificate
// is checked on its own first, so that a problem names the file that is
// actually wrong instead of a generic "bad key pair"; both files are
// looked at, so that two bad files make two problems.
func readKeyPair(read func(string) ([]byte, error), certFile, keyFile string) (tls.Certificate, []*fileProblem) {
	var problems []*fileProblem
	certPEM, err := read(certFile)
	if err != nil {
		problems = append(problems, &fileProblem{key: "cert-file", reason: "cannot read file", err: err})
	} else if err := checkCertPEM(certPEM); err != nil {
		problems = append(problems, &fileProblem{key: "cert-file", reason: fmt.Sprintf("invalid certificate file %q", certFile), err: err})
	}
	keyPEM, err := read(keyFile)
	if err != nil {
		problems = append(problems, &fileProblem{key: "key-file", reason: "cannot read file", err: err})
	} else if err := checkKeyPEM(keyPEM); err != nil {
		problems = append(problems, &fileProblem{key: "key-file", reason: fmt.Sprintf("invalid private key file %q", keyFile), err: err})
	}
	if len(problems) > 0 {
		return tls.Certificate{}, problems
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, []*fileProblem{{key: "key-file", reason: fmt.Sprintf("invalid private key file %q for certificate %q", keyFile, certFile), err: err}}
	}
	return cert, nil
}

// checkCertPEM verifies that data holds at least one parseable certificate.
func checkCertPEM(data []byte) error {
	found := false
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return err
		}
		found = true
	}
	if !found {
		if bytes.Contains(data, []byte("PRIVATE KEY")) {
			return errors.New("no PEM certificate found (the file looks like a private key)")
		}
		return errors.New("no PEM certificate found")
	}
	return nil
}

// checkKeyPEM verifies that data holds a PEM private key block; whether
// the key parses and fits the certificate is left to tls.X509KeyPair.
func checkKeyPEM(data []byte) error {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			return nil
		}
	}
	if bytes.Contains(data, []byte("CERTIFICATE")) {
		return errors.New("no PEM private key found (the file looks like a certificate)")
	}
	return errors.New("no PEM private key found")
}

// certPool reads a PEM file of CA certificates named by key p, recording
// a problem with it; nil when file is empty or bad.
func (r *resolver) certPool(p keyPath, file string) *x509.CertPool {
	if file == "" {
		return nil
	}
	pool, problem := readCAs(r.readFile, "cas-file", file)
	if problem != nil {
		r.fail(p, problem.reason, problem.err)
		return nil
	}
	return pool
}

// keyPair loads a TLS certificate and its private key, both required,
// recording each problem at the key that names the bad file.
func (r *resolver) keyPair(certKey, keyKey keyPath, certFile, keyFile string) (tls.Certificate, bool) {
	ok := true
	if certFile == "" {
		r.failf(certKey, "required")
		ok = false
	}
	if keyFile == "" {
		r.failf(keyKey, "required")
		ok = false
	}
	if !ok {
		return tls.Certificate{}, false
	}
	cert, problems := readKeyPair(r.readFile, certFile, keyFile)
	for _, problem := range problems {
		at := keyKey
		if problem.key == "cert-file" {
			at = certKey
		}
		r.fail(at, problem.reason, problem.err)
	}
	return cert, len(problems) == 0
}

// endpointTLSFiles reads the TLS files of an endpoint of table p that
// speaks TLS, as the endpoint will at start: the cas-file, and the
// certificate when both of its files are given (certPair reports a
// missing half).
func (r *resolver) endpointTLSFiles(p keyPath, casFile, certFile, keyFile string) {
	if casFile != "" && casFile != InsecureSkipVerify {
		r.certPool(p.key("cas-file"), casFile)
	}
	if certFile != "" && keyFile != "" {
		r.keyPair(p.key("cert-file"), p.key("key-file"), certFile, keyFile)
	}
}
