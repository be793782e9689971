package controlclient_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/controlclient"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/testprog"
	"github.com/p2pconnet/connet/internal/tuning"
)

// closedPort is a loopback port where nothing listens, on UDP and on TCP.
func closedPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	_ = c.Close()
	return addr
}

// firstError runs s until it reports an error in its status, and returns
// the error.
func firstError(t *testing.T, ctx context.Context, s *controlclient.Session) string {
	t.Helper()
	return runUntil(t, ctx, s, "failed", func(st controlclient.Status) bool { return st.LastError != "" }).LastError
}

// TestServerDownSaysSo: a client pointed at a port where nothing listens
// (the server is down; its host answers "port unreachable") says that
// the server refuses connections, on one line, without calling it a
// blocked path, with the TCP fallback and without. The handshake timeout
// is a minute, beyond the test's bound: the refusal is what ends the QUIC
// dial, not the timeout.
func TestServerDownSaysSo(t *testing.T) {
	t.Parallel()
	cert, err := testcert.New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tcp  bool
	}{{"quic only", false}, {"with the tcp fallback", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			addr := closedPort(t)
			logs := &testprog.LockedBuffer{}
			cfg := controlclient.Config{
				ServerAddr: addr,
				TLS:        &tls.Config{MinVersion: tls.VersionTLS13, ServerName: "localhost", RootCAs: cert.Pool},
				QUIC:       tuning.QUIC(time.Minute),
				Token:      "good",
				Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			}
			if tc.tcp {
				cfg.TCP = &muxconn.Fallback{Dialers: []muxconn.Dialer{muxconn.TCPDialer{Addr: addr}}}
			}
			got := firstError(t, ctx, testSession(t, cfg))
			want := "control server " + addr + " refuses connections (is it running?): quic to " + addr + ": connection refused"
			if !strings.HasPrefix(got, want) || strings.Contains(got, "\n") {
				t.Errorf("last error %q, want one line starting %q", got, want)
			}
			if tc.tcp && !strings.Contains(got, "tcp: dial tcp "+addr+": connect: connection refused") {
				t.Errorf("last error %q does not say TCP was refused too", got)
			}
			if strings.Contains(logs.String(), "UDP blocked") {
				t.Errorf("a server that is down is called a blocked path:\n%s", logs)
			}
		})
	}
}

// TestSilentServerIsPossiblyBlocked: where nothing answers at all (a
// firewall dropping UDP), the client still says UDP may be blocked and
// tries TCP; the error that all transports failed is one line.
func TestSilentServerIsPossiblyBlocked(t *testing.T) {
	t.Parallel()
	cert, err := testcert.New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tcpAddr := closedPort(t)
	logs := &testprog.LockedBuffer{}
	s := testSession(t, controlclient.Config{
		ServerAddr: silentUDP(t),
		TLS:        &tls.Config{MinVersion: tls.VersionTLS13, ServerName: "localhost", RootCAs: cert.Pool},
		QUIC:       tuning.QUIC(300 * time.Millisecond),
		Token:      "good",
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		TCP: &muxconn.Fallback{Dialers: []muxconn.Dialer{
			muxconn.TCPDialer{Addr: tcpAddr},
			muxconn.TCPDialer{Addr: tcpAddr},
		}},
	})
	got := firstError(t, ctx, s)
	if strings.Contains(got, "\n") || !strings.Contains(got, "connection refused; ") {
		t.Errorf("last error %q, want the transports' errors on one line", got)
	}
	if strings.Contains(got, "refuses connections") {
		t.Errorf("last error %q: a silent server is not a refusing one", got)
	}
	if !strings.Contains(logs.String(), "(UDP blocked?): trying TCP beside it") {
		t.Errorf("a silent QUIC server is not called a possibly blocked path:\n%s", logs)
	}
}
