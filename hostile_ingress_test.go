package connet_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/testprog"
	"github.com/p2pconnet/connet/internal/testwait"
	"github.com/p2pconnet/connet/internal/wire"
)

// TestHostileIngressFloods holds floods of connections at the control
// server's TCP ingress (TLS and WebSocket on the port of its QUIC one),
// each from a loopback address of its own, while a healthy tunnel beside
// them keeps echoing: connections that send nothing, ones that finish TLS
// as a WebSocket client and send nothing more, ones that send one plain
// HTTP request and then idle, and ones that finish TLS as a connet client
// and never say hello. While each flood is held, a client whose UDP is
// blocked still connects over TCP; the server refuses what passes an
// address's share, logs and counts it, and closes every idle connection
// within its handshake timeout.
func TestHostileIngressFloods(t *testing.T) {
	logs := &testprog.LockedBuffer{}
	serverLog := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := newHarness(t, with(connet.ServerLogger(serverLog)), with(connet.ServerStatusAddress("127.0.0.1:0")))
	healthy := startHealthyTunnel(t, h)
	hostile, err := testcert.New("hostile")
	if err != nil {
		t.Fatal(err)
	}
	tlsAs := func(alpn string) *tls.Config {
		return &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{hostile.TLS},
			RootCAs:      h.cert.Pool,
			ServerName:   "localhost",
			NextProtos:   []string{alpn},
		}
	}

	cases := []struct {
		name string
		from string
		n    int
		// open makes one connection of the flood out of a TCP one.
		open func(t *testing.T, c net.Conn) net.Conn
		// closed: the server must close every connection of the flood
		// while it is held (else only those past the address's share).
		closed bool
		// logged must appear in the server's log after the case.
		logged string
	}{
		{"connections that send nothing", "127.0.0.2", 200,
			func(t *testing.T, c net.Conn) net.Conn { return c }, false, "connection refused"},
		{"TLS as a WebSocket, then nothing", "127.0.0.3", 32,
			func(t *testing.T, c net.Conn) net.Conn { return tlsClient(t, c, tlsAs("http/1.1")) }, true, ""},
		{"one plain request, then idle", "127.0.0.4", 32,
			func(t *testing.T, c net.Conn) net.Conn {
				tc := tlsClient(t, c, tlsAs("http/1.1"))
				plainRequest(t, tc)
				return tc
			}, true, ""},
		{"TLS as a connet client, then no hello", "127.0.0.5", 32,
			func(t *testing.T, c net.Conn) net.Conn { return tlsClient(t, c, tlsAs(wire.ALPNControl)) }, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conns := make([]net.Conn, 0, c.n)
			defer func() {
				for _, conn := range conns {
					_ = conn.Close()
				}
			}()
			for range c.n {
				raw, err := testprog.DialFrom(t, c.from, h.addr)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c.open(t, raw))
			}
			blocker := &udpBlocker{}
			blocker.blocked.Store(true)
			cl := h.connect("token-s", connet.ClientNetwork(blocker), connet.ClientHandshakeIdleTimeout(time.Second))
			if st := cl.Status().Control; !st.Connected || st.Transport != "tcp" {
				t.Fatalf("a client during the flood: control connection %+v, want connected over tcp", st)
			}
			_ = cl.Close()
			if c.closed {
				expectAllClosed(t, conns)
			}
			if c.logged != "" {
				testwait.For(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), c.logged) }, "log line %q", c.logged)
			}
		})
	}
	// Most of the 200 connections from one address were past its share
	// of handshakes (64), and are counted.
	waitMetrics(t, h.srv.StatusAddr(), ge("connet_control_refusals_total", 100, "peer", "client", "reason", "connections"))
	healthy.stop(t)
}

// tlsClient runs a TLS handshake over c.
func tlsClient(t *testing.T, c net.Conn, conf *tls.Config) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc := tls.Client(c, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		t.Fatal(err)
	}
	return tc
}

// plainRequest sends a GET that asks for no upgrade and reads the answer.
func plainRequest(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
}

// expectAllClosed waits until the server has closed every one of conns,
// for 15 s at most (three handshake timeouts).
func expectAllClosed(t *testing.T, conns []net.Conn) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var open sync.WaitGroup
	var mu sync.Mutex
	left := 0
	for _, c := range conns {
		open.Go(func() {
			_ = c.SetReadDeadline(deadline)
			_, err := io.Copy(io.Discard, c)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				mu.Lock()
				left++
				mu.Unlock()
			}
		})
	}
	open.Wait()
	if left > 0 {
		t.Fatalf("%d of %d connections still open after 15 s", left, len(conns))
	}
}
