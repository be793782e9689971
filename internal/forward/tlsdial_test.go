package forward

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/testcert"
)

// tlsEcho is a TLS service that requires a client certificate from pki's
// CA and answers each line with the SNI and client certificate it saw.
func tlsEcho(t *testing.T, pki *testcert.PKI) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pki.Server.TLS},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.CA.Pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if err := tc.Handshake(); err != nil {
					return
				}
				st := tc.ConnectionState()
				line, err := bufio.NewReader(tc).ReadString('\n')
				if err != nil {
					return
				}
				fmt.Fprintf(tc, "sni=%q client=%s got=%s", st.ServerName, st.PeerCertificates[0].Subject.CommonName, line)
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip opens a tunnelled connection, sends line and reads the answer
// until the service closes.
func roundTrip(t *testing.T, ft *fakeTunnel, line string) (string, error) {
	t.Helper()
	return exchange(t, ft, line, func(c net.Conn) (string, error) {
		b, err := io.ReadAll(c)
		return string(b), err
	})
}

// exchange opens a tunnelled connection, sends line and returns what read
// makes of the answer.
func exchange(t *testing.T, ft *fakeTunnel, line string, read func(net.Conn) (string, error)) (string, error) {
	t.Helper()
	c, err := net.Dial("tcp", ft.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // a bound on a hung test, not a speed check
	if _, err := io.WriteString(c, line); err != nil {
		return "", err
	}
	return read(c)
}

func TestTLSDestinationMutualTLSAndSNI(t *testing.T) {
	pki := newTestPKI(t, "tlsdst")
	addr := tlsEcho(t, pki)
	_, port, _ := net.SplitHostPort(addr)
	for host, sni := range map[string]string{"localhost": "localhost", "127.0.0.1": ""} {
		d := config.DestinationSettings{Name: "t", URL: mustURL(t, "tls://"+host+":"+port),
			CAsFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}
		ft := startDestination(t, d, testOrigin)
		got, err := roundTrip(t, ft, "ping\n")
		if err := ft.nextDialErr(t); err != nil {
			t.Fatalf("%s: dial: %v", host, err)
		}
		if want := fmt.Sprintf("sni=%q client=client-tlsdst got=ping\n", sni); err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", host, got, err, want)
		}
	}
}

func TestTLSDestinationRefusals(t *testing.T) {
	pki := newTestPKI(t, "tlsdst")
	other := newTestPKI(t, "other")
	addr := tlsEcho(t, pki)
	for _, tc := range []struct {
		name string
		d    config.DestinationSettings
		// dialFails: the refusal is seen in our handshake; otherwise only
		// once the server rejects our certificate (after a TLS 1.3 client
		// has finished its side of the handshake).
		dialFails bool
	}{
		{"untrusted server", config.DestinationSettings{CAsFile: other.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}, true},
		{"no client certificate", config.DestinationSettings{CAsFile: pki.CAFile}, false},
		{"client certificate of another CA", config.DestinationSettings{CAsFile: pki.CAFile, CertFile: other.ClientCert, KeyFile: other.ClientKey}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.d
			d.Name, d.URL = "t", mustURL(t, "tls://localhost:"+strings.Split(addr, ":")[1])
			ft := startDestination(t, d, testOrigin)
			got, _ := roundTrip(t, ft, "ping\n")
			dialErr := ft.nextDialErr(t)
			if got != "" {
				t.Errorf("service answered %q", got)
			}
			if tc.dialFails && dialErr == nil {
				t.Error("dial succeeded")
			}
		})
	}
}

func TestTLSDestinationDialTimeoutCoversHandshake(t *testing.T) {
	// A service that accepts but never speaks TLS.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				<-done
				_ = c.Close()
			}()
		}
	}()
	d := config.DestinationSettings{Name: "t", URL: mustURL(t, "tls://"+ln.Addr().String()), InsecureSkipVerify: true, DialTimeout: 100 * time.Millisecond}
	ft := startDestination(t, d, testOrigin)
	c, err := net.Dial("tcp", ft.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := ft.nextDialErr(t); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("dial: %v, want a deadline error", err)
	}
}

func TestNewDestinationLoadsTLSFilesAtStart(t *testing.T) {
	pki := newTestPKI(t, "files")
	notPEM := filepath.Join(t.TempDir(), "cas.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]config.DestinationSettings{
		"missing cas":      {CAsFile: "/nonexistent/ca.pem"},
		"cas not PEM":      {CAsFile: notPEM},
		"cert without key": {CertFile: pki.ClientCert, KeyFile: "/nonexistent/key.pem"},
		"mismatched pair":  {CertFile: pki.ClientCert, KeyFile: pki.ServerKey},
	} {
		for _, scheme := range []string{"tls", "https"} {
			d.URL = mustURL(t, scheme+"://localhost:1")
			if _, err := NewDestination(d, testLogger(t)); err == nil {
				t.Errorf("%s %s: no error", scheme, name)
			}
		}
	}
}
