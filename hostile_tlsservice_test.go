package connet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/forward"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/testprog"
	"github.com/p2pconnet/connet/internal/testwait"
)

// TestTLSServiceRefusingTheClient puts a real openssl s_server that demands
// a client certificate (-Verify 1) behind a tls:// destination that has
// none, and opens connection after connection to it, beside a healthy
// tunnel. Every connection is refused; the destination's log says why
// once, not once per connection, its status shows it as the last error,
// and the healthy tunnel never fails. Under TLS 1.3 the refusal comes
// after a handshake that succeeded on the destination's side; under TLS
// 1.2 it ends the handshake, so the dial fails.
func TestTLSServiceRefusingTheClient(t *testing.T) {
	openssl := testprog.Need(t, "openssl", "openssl")
	h := newHarness(t)
	healthy := startHealthyTunnel(t, h)
	for _, tc := range []struct {
		version, name, msg, alert string
	}{
		{"-tls1_3", "mtls13", "destination's service refused the connection", "certificate required"},
		{"-tls1_2", "mtls12", "destination dial failed", "handshake failure"},
	} {
		t.Run(tc.version, func(t *testing.T) {
			pki, err := testcert.NewPKI(t.TempDir(), "svc")
			if err != nil {
				t.Fatal(err)
			}
			addr := startOpenSSLServer(t, openssl, tc.version, "-cert", pki.ServerCert, "-key", pki.ServerKey,
				"-CAfile", pki.CAFile, "-Verify", "1", "-verify_return_error", "-rev")

			logs := &testprog.LockedBuffer{}
			dstLog := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			dstClient := h.connect("token-d", connet.ClientLogger(dstLog))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			dst, err := dstClient.Destination(ctx, connet.NewDestinationConfig(tc.name))
			if err != nil {
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(addr)
			settings := config.DestinationSettings{Name: tc.name, URL: &url.URL{Scheme: "tls", Host: "localhost:" + port}, CAsFile: pki.CAFile}
			svc, err := forward.NewDestination(settings, dstLog)
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- svc.Serve(ctx, dst) }()
			defer func() { cancel(); <-served }()

			src, err := h.connect("token-s").Source(ctx, connet.NewSourceConfig(tc.name))
			if err != nil {
				t.Fatal(err)
			}
			const conns = 20
			for i := range conns {
				if answer, err := refusedExchange(ctx, src); err == nil {
					t.Fatalf("connection %d: the service answered %q through a refused TLS session", i, answer)
				}
			}

			want := fmt.Sprintf("tls service localhost:%s refused the connection: remote error: tls: %s (it requires a client certificate: set cert-file and key-file)", port, tc.alert)
			var st connet.EndpointStatus
			testwait.For(t, 10*time.Second, func() bool {
				for _, e := range dstClient.Status().Destinations {
					if e.Name == tc.name {
						st = e
					}
				}
				return st.LastError != ""
			}, "the destination to show an error")
			if st.LastError != want {
				t.Errorf("status: last error %q, want %q", st.LastError, want)
			}
			msg := `msg="` + tc.msg + `"`
			if n := strings.Count(logs.String(), msg); n != 1 {
				t.Errorf("%d log lines %s for %d refused connections, want 1:\n%s", n, msg, conns, logs)
			}
			if !strings.Contains(logs.String(), "level=WARN "+msg+" name="+tc.name) || !strings.Contains(logs.String(), strings.ReplaceAll(want, `"`, `\"`)) {
				t.Errorf("the log does not name the destination, the service and the alert:\n%s", logs)
			}
		})
	}
	healthy.stop(t)
}

// refusedExchange opens a connection through src and sends a line; it
// returns the answer, or why there was none (the destination's reset, or
// a dial that the reset overtook).
func refusedExchange(ctx context.Context, src *connet.Source) (string, error) {
	for range 100 {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := src.Dial(dctx)
		cancel()
		if connet.ReasonOf(err) == "no-peer" {
			time.Sleep(20 * time.Millisecond) // the destination is not announced yet
			continue
		}
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "hello\n"); err != nil {
			return "", err
		}
		b, err := io.ReadAll(c)
		if err == nil && len(b) == 0 {
			err = io.EOF
		}
		return string(b), err
	}
	return "", errors.New("the destination was never announced")
}

// startOpenSSLServer runs openssl s_server with args on a free loopback
// port until the test ends and returns its address once it accepts
// connections.
func startOpenSSLServer(t *testing.T, openssl string, args ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	testprog.StartListening(t, exec.Command(openssl, append([]string{"s_server", "-accept", addr}, args...)...), addr)
	return addr
}
