package simnet

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// TestTCPThroughNAT: a host behind a NAT dials a public host's listener;
// the server sees the NAT's public address, bytes pass both ways, and a
// close reads as EOF after what was written.
func TestTCPThroughNAT(t *testing.T) {
	n := New()
	defer n.Close()
	server := n.Host("203.0.113.1")
	nat := n.NAT("198.51.100.1", AddressAndPortDependent, AddressAndPortDependent, 0)
	client := nat.Host("192.168.1.2")
	ln, err := server.Listen(context.Background(), "tcp", ":443")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := client.DialContext(context.Background(), "tcp", "203.0.113.1:443")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); got != nat.Public() {
		t.Fatalf("server sees the client at %v, want the NAT's %v", got, nat.Public())
	}
	if got := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); got != client.Addr() {
		t.Fatalf("client's local address %v, want its own %v", got, client.Addr())
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "hello" {
		t.Fatalf("server read %q, %v", got, err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("write to a closed peer: %v, want ECONNRESET", err)
	}
}

// TestTCPRefused: no listener, a NAT's public address (no NAT forwards
// inbound TCP), a closed listener and a private address from the internet
// all refuse a dial; a closed listener's port binds again.
func TestTCPRefused(t *testing.T) {
	n := New()
	defer n.Close()
	server := n.Host("203.0.113.1")
	nat := n.NAT("198.51.100.1", EndpointIndependent, EndpointIndependent, 0)
	private := nat.Host("192.168.1.2")
	if _, err := private.Listen(context.Background(), "tcp", ":80"); err != nil {
		t.Fatal(err)
	}
	ln, err := server.Listen(context.Background(), "tcp", ":443")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.Listen(context.Background(), "tcp", ":443"); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("a second listener on the port: %v, want EADDRINUSE", err)
	}
	_ = ln.Close()
	for _, addr := range []string{"203.0.113.1:443", "203.0.113.1:444", "198.51.100.1:80", "192.168.1.2:80"} {
		if _, err := server.DialContext(context.Background(), "tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial %s: %v, want ECONNREFUSED", addr, err)
		}
	}
	ln, err = server.Listen(context.Background(), "tcp", ":443")
	if err != nil {
		t.Fatalf("listen again after close: %v", err)
	}
	_ = ln.Close()
}

// TestTCPWindowAndDeadlines: a writer waits while its reader is a window
// behind, until the reader reads or the write deadline passes; a read
// waits for its deadline.
func TestTCPWindowAndDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New()
		defer n.Close()
		h := n.Host("203.0.113.1")
		ln, err := h.Listen(context.Background(), "tcp", ":1")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := h.DialContext(context.Background(), "tcp", "203.0.113.1:1")
		if err != nil {
			t.Fatal(err)
		}
		s, _ := ln.Accept()
		_ = s.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := s.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read with nothing sent: %v, want a deadline error", err)
		}
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		n1, err := c.Write(make([]byte, window+10))
		if n1 != window || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write past the window: %d, %v; want %d and a deadline error", n1, err, window)
		}
		_ = c.SetWriteDeadline(time.Time{})
		done := make(chan error)
		go func() {
			_, err := c.Write(make([]byte, 10))
			done <- err
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("a write into a full window returned (%v)", err)
		default:
		}
		_ = s.SetReadDeadline(time.Time{})
		if _, err := io.ReadFull(s, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("write once the reader read: %v", err)
		}
	})
}

// TestUDPBlocked: a blocked host neither sends nor receives datagrams,
// and does again once unblocked.
func TestUDPBlocked(t *testing.T) {
	n := New()
	defer n.Close()
	a, b := n.Host("203.0.113.1"), n.Host("203.0.113.2")
	ca, cb := listen(t, a, ":1"), listen(t, b, ":1")
	a.SetUDPBlocked(true)
	send(t, ca, cb.local, "out")
	send(t, cb, ca.local, "in")
	if _, _, ok := poll(cb); ok {
		t.Fatal("a blocked host's datagram arrived")
	}
	if _, _, ok := poll(ca); ok {
		t.Fatal("a datagram reached a blocked host")
	}
	if got := n.Stats().Blocked; got != 2 {
		t.Fatalf("blocked %d, want 2", got)
	}
	a.SetUDPBlocked(false)
	send(t, ca, cb.local, "out")
	if msg, _, ok := poll(cb); !ok || msg != "out" {
		t.Fatalf("after unblocking: %q, %v", msg, ok)
	}
}
