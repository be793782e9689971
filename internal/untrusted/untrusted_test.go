package untrusted

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	reason := x509.HostnameError{Certificate: &x509.Certificate{DNSNames: []string{"a.example"}}, Host: "b.example"}
	verr := &tls.CertificateVerificationError{Err: reason}
	wrapped := fmt.Errorf("dial 127.0.0.1:1: %w", verr)

	err := Check("127.0.0.1:1", wrapped)
	if !errors.Is(err, ErrCertificate) {
		t.Fatalf("%v does not wrap ErrCertificate", err)
	}
	var host x509.HostnameError
	if !errors.As(err, &host) || host.Host != "b.example" {
		t.Fatalf("%v does not carry the x509 reason", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "b.example") {
		t.Fatalf("%q names neither the server nor the reason", err)
	}
	if Check("x", errors.New("timeout: no recent network activity")) != nil {
		t.Fatal("a network error was taken for an untrusted certificate")
	}
}
