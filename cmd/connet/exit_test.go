package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/p2pconnet/connet"
)

func TestExitCode(t *testing.T) {
	live := context.Background()
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	connecting := fmt.Errorf("connet: connecting to 127.0.0.1:1: %w (last error: )", context.Canceled)
	for _, tt := range []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{"success", live, nil, 0},
		{"interrupted before connecting", stopped, connecting, 0},
		{"interrupted after connecting", stopped, nil, 0},
		{"failed", live, errors.New("boom"), 1},
		{"canceled without an interrupt", live, connecting, 1},
		{"failed while interrupted", stopped, errors.New("boom"), 1},
	} {
		var out bytes.Buffer
		if got := exitCode(tt.ctx, tt.err, &out); got != tt.want {
			t.Errorf("%s: exit %d, want %d", tt.name, got, tt.want)
		}
		if tt.want == 0 && out.Len() > 0 {
			t.Errorf("%s: printed %q", tt.name, out.String())
		}
	}
}

// untrustedErr builds the error a client gets for an untrusted server:
// the library's sentinel with the x509 reason in the chain.
func untrustedErr(reason error) error {
	return fmt.Errorf("%w: 127.0.0.1:1: %w", connet.ErrUntrustedServer, &tls.CertificateVerificationError{Err: reason})
}

func TestUntrustedServerHints(t *testing.T) {
	cert := &x509.Certificate{DNSNames: []string{"ctl.example.com"}, IPAddresses: []net.IP{net.IPv4(192, 0, 2, 1)}}
	for _, tt := range []struct {
		name   string
		reason error
		want   string
	}{
		{"unknown authority", x509.UnknownAuthorityError{}, "set server-cas-file (--server-cas-file) to the PEM file of the CA"},
		{"name mismatch", x509.HostnameError{Certificate: cert, Host: "other.example"}, `the certificate is for ctl.example.com, 192.0.2.1, not "other.example": set server-name (--server-name)`},
		{"expired", x509.CertificateInvalidError{Reason: x509.Expired}, "replace it on the server"},
	} {
		var out bytes.Buffer
		code := exitCode(context.Background(), trustHint(untrustedErr(tt.reason), "server-cas-file", "server-name"), &out)
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if code != 1 || len(lines) != 2 {
			t.Fatalf("%s: exit %d, output %q", tt.name, code, out.String())
		}
		if !strings.HasPrefix(lines[0], "connet: control server's certificate is not trusted: 127.0.0.1:1: tls: failed to verify certificate: x509:") {
			t.Errorf("%s: first line %q lacks the reason", tt.name, lines[0])
		}
		if !strings.HasPrefix(lines[1], "connet: hint: ") || !strings.Contains(lines[1], tt.want) {
			t.Errorf("%s: hint %q, want %q", tt.name, lines[1], tt.want)
		}
	}
	relay := trustHint(untrustedErr(x509.UnknownAuthorityError{}), "control-cas-file", "control-name")
	var h *hintError
	if !errors.As(relay, &h) || !strings.Contains(h.hint, "control-cas-file (--control-cas-file)") {
		t.Errorf("relay hint: %v", relay)
	}
	if err := errors.New("other"); trustHint(err, "a", "b") != err {
		t.Error("an unrelated error got a hint")
	}
}

func TestPrintErrorPrefixOnce(t *testing.T) {
	var out bytes.Buffer
	printError(&out, connet.ErrClosed)
	if got := out.String(); got != "connet: closed\n" {
		t.Fatalf("printed %q", got)
	}
}
