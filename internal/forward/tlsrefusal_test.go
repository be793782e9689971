package forward

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/testprog"
)

// TestTLSServiceRefusalIsReported puts openssl s_server, which demands a
// client certificate from its CA, behind a tls:// destination that
// presents none or the wrong one. Under TLS 1.3 the dial succeeds and the
// refusal comes on the first read; under TLS 1.2 it ends the dial. Either
// way the destination reports which service refused, the alert, and what
// to change.
func TestTLSServiceRefusalIsReported(t *testing.T) {
	openssl := testprog.Need(t, "openssl", "openssl")
	pki := newTestPKI(t, "refusal")
	other := newTestPKI(t, "other")
	for _, tc := range []struct {
		name      string
		version   string // openssl's option for the protocol version
		cert, key string
		// afterDial: the refusal comes after a dial that succeeded, and
		// is reported with ReportServiceError; else the dial fails.
		afterDial bool
		want      string
	}{
		{"TLS 1.3 without a client certificate", "-tls1_3", "", "", true,
			"refused the connection: remote error: tls: certificate required (it requires a client certificate: set cert-file and key-file)"},
		// Go presents no certificate that does not chain to the CAs the
		// service names, so the service finds none.
		{"TLS 1.3 with a certificate of another CA", "-tls1_3", other.ClientCert, other.ClientKey, true,
			"refused the connection: remote error: tls: certificate required (it does not accept the client certificate of cert-file)"},
		{"TLS 1.2 without a client certificate", "-tls1_2", "", "", false,
			"refused the connection: remote error: tls: handshake failure (it requires a client certificate: set cert-file and key-file)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t)
			addr := "127.0.0.1:" + port
			testprog.StartListening(t, exec.Command(openssl, "s_server", "-accept", addr, tc.version,
				"-cert", pki.ServerCert, "-key", pki.ServerKey, "-CAfile", pki.CAFile,
				"-Verify", "1", "-verify_return_error", "-rev"), addr)
			d := config.DestinationSettings{Name: "ossl", URL: mustURL(t, "tls://localhost:"+port),
				CAsFile: pki.CAFile, CertFile: tc.cert, KeyFile: tc.key}
			ft := startDestination(t, d, testOrigin)
			const conns = 5
			for i := range conns {
				got, _ := lineRoundTrip(t, ft, "hello connet\n")
				if got != "" {
					t.Fatalf("connection %d: the refusing service answered %q", i, got)
				}
				dialErr := ft.nextDialErr(t)
				var reported error
				if tc.afterDial {
					if dialErr != nil {
						t.Fatalf("connection %d: dial failed: %v", i, dialErr)
					}
					reported = ft.nextServiceErr(t)
				} else {
					reported = dialErr
				}
				want := "tls service localhost:" + port + " " + tc.want
				if reported == nil || !strings.HasPrefix(reported.Error(), want) {
					t.Fatalf("connection %d: reported %v, want %q", i, reported, want)
				}
			}
			if n := ft.serviceErrCount(); n != 0 {
				t.Errorf("%d more service errors than connections", n)
			}
		})
	}
}

// TestTLSServiceThatAcceptsReportsNothing: a service that takes the
// client certificate reports no error, whatever the connection does.
func TestTLSServiceThatAcceptsReportsNothing(t *testing.T) {
	openssl := testprog.Need(t, "openssl", "openssl")
	pki := newTestPKI(t, "accepts")
	port := freePort(t)
	addr := "127.0.0.1:" + port
	testprog.StartListening(t, exec.Command(openssl, "s_server", "-accept", addr,
		"-cert", pki.ServerCert, "-key", pki.ServerKey, "-CAfile", pki.CAFile,
		"-Verify", "1", "-verify_return_error", "-rev"), addr)
	d := config.DestinationSettings{Name: "ossl", URL: mustURL(t, "tls://localhost:"+port),
		CAsFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}
	ft := startDestination(t, d, testOrigin)
	for i := range 3 {
		got, err := lineRoundTrip(t, ft, "hello connet\n")
		if err != nil || got != "tennoc olleh\n" {
			t.Fatalf("connection %d: got %q, %v; want the reversed line", i, got, err)
		}
		if err := ft.nextDialErr(t); err != nil {
			t.Fatal(err)
		}
	}
	if n := ft.serviceErrCount(); n != 0 {
		t.Errorf("%d service errors reported for a service that accepts: %v", n, <-ft.serviceErrs)
	}
}
