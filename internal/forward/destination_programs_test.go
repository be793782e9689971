package forward

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/testprog"
)

// These tests put real programs behind destinations. A missing program
// skips the test, except in CI (CI=true), which installs them (Debian
// packages openssl and nginx-light) and must not pass by skipping.

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// lineRoundTrip sends line through a tunnelled connection and reads one
// line back.
func lineRoundTrip(t *testing.T, ft *fakeTunnel, line string) (string, error) {
	t.Helper()
	return exchange(t, ft, line, func(c net.Conn) (string, error) {
		return bufio.NewReader(c).ReadString('\n')
	})
}

// TestTLSDestinationOpenSSLMutualTLS puts openssl s_server, which demands a
// client certificate from our CA (-Verify 1 -CAfile), behind a tls://
// destination.
func TestTLSDestinationOpenSSLMutualTLS(t *testing.T) {
	openssl := testprog.Need(t, "openssl", "openssl")
	pki := newTestPKI(t, "openssl")
	other := newTestPKI(t, "other")
	port := freePort(t)
	addr := "127.0.0.1:" + port
	testprog.StartListening(t, exec.Command(openssl, "s_server", "-accept", addr,
		"-cert", pki.ServerCert, "-key", pki.ServerKey, "-CAfile", pki.CAFile,
		"-Verify", "1", "-verify_return_error", "-rev"), addr)

	for _, tc := range []struct {
		name           string
		cert, key, cas string
		ok             bool
	}{
		{"client certificate", pki.ClientCert, pki.ClientKey, pki.CAFile, true},
		{"no client certificate", "", "", pki.CAFile, false},
		{"client certificate of another CA", other.ClientCert, other.ClientKey, pki.CAFile, false},
		{"untrusted server", pki.ClientCert, pki.ClientKey, other.CAFile, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := config.DestinationSettings{Name: "ossl", URL: mustURL(t, "tls://localhost:"+port),
				CAsFile: tc.cas, CertFile: tc.cert, KeyFile: tc.key}
			ft := startDestination(t, d, testOrigin)
			got, err := lineRoundTrip(t, ft, "hello connet\n")
			_ = ft.nextDialErr(t)
			if tc.ok && (err != nil || got != "tennoc olleh\n") {
				t.Errorf("got %q, %v; want the reversed line", got, err)
			}
			if !tc.ok && got != "" {
				t.Errorf("refused connection answered %q", got)
			}
		})
	}
}

// startNginx runs nginx expecting PROXY protocol on its listener and
// logging the address the header carries.
func startNginx(t *testing.T) (addr, accessLog string) {
	t.Helper()
	nginx := testprog.Need(t, "nginx", "nginx-light")
	dir := t.TempDir()
	addr = "127.0.0.1:" + freePort(t)
	accessLog = filepath.Join(dir, "access.log")
	args, err := testprog.NginxProxyProto(dir, addr, accessLog)
	if err != nil {
		t.Fatal(err)
	}
	testprog.StartListening(t, exec.Command(nginx, args...), addr)
	return addr, accessLog
}

// waitLog waits for a line containing want in file.
func waitLog(t *testing.T, file, want string) {
	t.Helper()
	var b []byte
	for range 300 {
		b, _ = os.ReadFile(file)
		if strings.Contains(string(b), want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s has no %q:\n%s", file, want, b)
}

func TestProxyProtoNginx(t *testing.T) {
	addr, accessLog := startNginx(t)
	for i, v := range []config.ProxyProtoVersion{config.ProxyProtoV1, config.ProxyProtoV2} {
		t.Run(string(v), func(t *testing.T) {
			// A different origin port per version, so each log line is
			// told apart.
			origin := fmt.Sprintf("203.0.113.7:%d", 4000+i)
			d := config.DestinationSettings{Name: "ng", URL: mustURL(t, "tcp://"+addr), ProxyProtoVersion: v}
			ft := startDestination(t, d, mustAddrPort(t, origin))
			code, body := get(t, frontClient(ft), "http://front/"+string(v))
			if code != http.StatusOK || body != "pp="+origin+"\n" {
				t.Errorf("got %d %q", code, body)
			}
			waitLog(t, accessLog, origin+` "GET /`+string(v)+` HTTP/1.1" 200`)
		})
	}
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}
