package muxconn_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/muxconn"
)

// TestWebSocketIngressClosesIdle: a client that finishes its TLS
// handshake as a WebSocket would and then sends one plain request, or
// nothing at all, is closed by the listener; it cannot hold a connection
// (and a handshake's share of the limits) for longer than the handshake
// timeout.
func TestWebSocketIngressClosesIdle(t *testing.T) {
	server, client := ids(t)
	ln := listenWith(t, server, func(c *muxconn.ListenConfig) { c.HandshakeTimeout = 500 * time.Millisecond })
	for _, tc := range []struct {
		name    string
		request string
	}{
		{"one request, then idle", "GET / HTTP/1.1\r\nHost: connet\r\n\r\n"},
		{"one request asking to keep alive, then idle", "GET / HTTP/1.1\r\nHost: connet\r\nConnection: keep-alive\r\n\r\n"},
		{"nothing after TLS", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tls.Dial("tcp", ln.Addr().String(), client.PinnedClientConfig(server.DER(), "http/1.1"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r := bufio.NewReader(c)
			if tc.request != "" {
				if _, err := io.WriteString(c, tc.request); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = r.ReadByte()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the connection is still open 10 s later")
			}
		})
	}
}

// TestWebSocketOutlivesHTTPTimeouts: an upgraded WebSocket is no longer
// the HTTP server's: it carries streams after its timeouts (the handshake
// timeout) have passed three times over with nothing sent.
func TestWebSocketOutlivesHTTPTimeouts(t *testing.T) {
	server, client := ids(t)
	const timeout = 500 * time.Millisecond
	ln := listenWith(t, server, func(c *muxconn.ListenConfig) { c.HandshakeTimeout = timeout })
	cc, sc := pairVia(t, ln, muxconn.WSSDialer{Addr: ln.Addr().String()}, server, client)
	time.Sleep(3 * timeout)
	echoOnce(t, cc, sc, "still up")
	echoOnce(t, sc, cc, "still down")
}
