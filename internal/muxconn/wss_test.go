package muxconn_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/muxconn"
)

// connectProxy is an HTTP proxy on loopback that only tunnels (CONNECT),
// as corporate proxies in front of HTTPS do; it counts the tunnels.
func connectProxy(t *testing.T) (*url.URL, *atomic.Int32) {
	t.Helper()
	var tunnels atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "only CONNECT", http.StatusMethodNotAllowed)
			return
		}
		up, err := net.DialTimeout("tcp", r.Host, 5*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer up.Close()
		down, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer down.Close()
		tunnels.Add(1)
		_, _ = io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n")
		done := make(chan struct{})
		go func() { _, _ = io.Copy(up, down); close(done) }()
		_, _ = io.Copy(down, up)
		<-done
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}, &tunnels
}

// echoOnce opens a stream on c, sends msg, and checks that the peer's
// accepted stream reads it.
func echoOnce(t *testing.T, c, peer muxconn.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(s, msg); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseWrite()
	ps, err := peer.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(ps)
	if err != nil || string(got) != msg {
		t.Fatalf("read %q, %v; want %q", got, err, msg)
	}
}

// TestWebSocketThroughProxy: a client behind an HTTP proxy that only
// tunnels reaches the listener with a WebSocket over HTTPS; the server
// sees its certificate, and streams work as over TCP.
func TestWebSocketThroughProxy(t *testing.T) {
	server, client := ids(t)
	ln := listen(t, server, nil, nil)
	proxy, tunnels := connectProxy(t)
	d := muxconn.WSSDialer{Addr: ln.Addr().String(), Timeout: 5 * time.Second, Proxy: http.ProxyURL(proxy)}
	cc, sc := pairVia(t, ln, d, server, client)
	if tunnels.Load() != 1 {
		t.Fatalf("%d tunnels through the proxy, want 1", tunnels.Load())
	}
	if cc.Transport() != muxconn.WSS || sc.Transport() != muxconn.WSS {
		t.Fatalf("transports %s/%s, want wss", cc.Transport(), sc.Transport())
	}
	if id, err := identity.PeerID(sc.TLS()); err != nil || id != client.ID {
		t.Fatalf("server sees peer %v (%v), want %v", id, err, client.ID)
	}
	echoOnce(t, cc, sc, "up")
	echoOnce(t, sc, cc, "down")
}

// TestWebSocketPinned: over WebSocket too, a client pinning another
// certificate refuses the server.
func TestWebSocketPinned(t *testing.T) {
	server, client := ids(t)
	other, _ := ids(t)
	ln := listen(t, server, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := muxconn.WSSDialer{Addr: ln.Addr().String()}.Dial(ctx, client.PinnedClientConfig(other.DER(), alpn))
	if !errors.Is(err, identity.ErrPinMismatch) {
		t.Fatalf("dial pinning another certificate: %v, want ErrPinMismatch", err)
	}
}

// TestFallbackRemembers: the fallback tries TLS over TCP, then WebSocket;
// with plain TLS refused it connects by WebSocket, and the next dial
// starts there.
func TestFallbackRemembers(t *testing.T) {
	server, client := ids(t)
	ln, err := muxconn.Listen(muxconn.ListenConfig{
		Addr: "127.0.0.1:0",
		TLS: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{server.Cert},
			NextProtos: []string{alpn}, ClientAuth: tls.RequireAnyClientCert},
		HandshakeTimeout: 5 * time.Second,
		NoTCP:            true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	f := &muxconn.Fallback{Dialers: []muxconn.Dialer{
		muxconn.TCPDialer{Addr: addr, Timeout: 5 * time.Second},
		muxconn.WSSDialer{Addr: addr, Timeout: 5 * time.Second},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 2 {
		c, err := f.Dial(ctx, client.PinnedClientConfig(server.DER(), alpn))
		if err != nil {
			t.Fatal(err)
		}
		if c.Transport() != muxconn.WSS {
			t.Fatalf("fallback connected over %s, want wss", c.Transport())
		}
		if _, err := ln.Accept(ctx); err != nil {
			t.Fatal(err)
		}
		_ = c.CloseWithError(0, "")
	}
	if f.Transport() != muxconn.WSS {
		t.Fatalf("fallback starts with %s after WebSocket worked, want wss", f.Transport())
	}
}
