package muxconn_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/testprog"
)

// limitedListener is a listener with small limits, counting the
// connections it closes for passing them.
type limitedListener struct {
	*muxconn.Listener
	limited atomic.Int32
}

// listenLimited starts a listener with lim and a handshake timeout long
// enough that no idle connection in a test is closed for it.
func listenLimited(t *testing.T, server *identity.Identity, lim muxconn.Limits) *limitedListener {
	t.Helper()
	l := &limitedListener{}
	l.Listener = listenWith(t, server, func(c *muxconn.ListenConfig) {
		c.HandshakeTimeout = time.Minute
		c.Limits = lim
		c.Limited = func(_ netip.AddrPort, err error) {
			if !errors.Is(err, muxconn.ErrOverLimit) {
				t.Errorf("limited with %v, want ErrOverLimit", err)
			}
			l.limited.Add(1)
		}
	})
	return l
}

// waitLimited waits until the listener has closed n connections over its
// limits.
func (l *limitedListener) waitLimited(t *testing.T, n int32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.limited.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections closed over the limits after 10 s, want %d", l.limited.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialFrom opens a TCP connection to addr from the loopback address from,
// which stays idle until the test ends.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	c, err := testprog.DialFrom(t, from, addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// flood opens n idle connections from from.
func flood(t *testing.T, from, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dialFrom(t, from, addr)
	}
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// connectFrom runs a client's TLS and multiplexer from the loopback address
// from, and returns both ends once the listener has accepted it.
func connectFrom(t *testing.T, ln *limitedListener, from string, server, client *identity.Identity) (cc, sc muxconn.Conn, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw := dialFrom(t, from, ln.Addr().String())
	cc, err = muxconn.Client(ctx, raw, client.PinnedClientConfig(server.DER(), alpn), muxconn.TCP)
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { _ = cc.CloseWithError(0, "") })
	if sc, err = ln.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sc.CloseWithError(0, "") })
	return cc, sc, nil
}

// connectEventually retries connectFrom (the listener notices a closed
// connection when it reads its end) for a few seconds.
func connectEventually(t *testing.T, ln *limitedListener, from string, server, client *identity.Identity) (cc, sc muxconn.Conn) {
	t.Helper()
	var err error
	for range 50 {
		if cc, sc, err = connectFrom(t, ln, from, server, client); err == nil {
			return cc, sc
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no connection from %s after 50 tries: %v", from, err)
	return nil, nil
}

// TestIdleFloodFromOneAddress: connections that send nothing hold a
// handshake each, up to the limit for their address; the listener closes
// the rest at once. A client from another address still connects, one
// from the flooding address does not until its connections go.
func TestIdleFloodFromOneAddress(t *testing.T) {
	server, client := ids(t)
	ln := listenLimited(t, server, muxconn.Limits{HandshakesPerAddr: 4})
	idle := flood(t, "127.0.0.2", ln.Addr().String(), 20)
	ln.waitLimited(t, 16)

	cc, sc, err := connectFrom(t, ln, "127.0.0.1", server, client)
	if err != nil {
		t.Fatalf("a client from another address during the flood: %v", err)
	}
	echoOnce(t, cc, sc, "through the flood")
	if _, _, err := connectFrom(t, ln, "127.0.0.2", server, client); err == nil {
		t.Fatal("a client from the flooding address connected past its handshake limit")
	}
	ln.waitLimited(t, 17)

	closeAll(idle)
	connectEventually(t, ln, "127.0.0.2", server, client)
}

// TestHandshakeLimitInTotal: the unfinished handshakes of all addresses
// together are bounded too; a new address is refused while they are all
// taken, and served once they are given back.
func TestHandshakeLimitInTotal(t *testing.T) {
	server, client := ids(t)
	ln := listenLimited(t, server, muxconn.Limits{Handshakes: 6, HandshakesPerAddr: 4})
	addr := ln.Addr().String()
	// The listener takes connections in their order: once the one past
	// an address's share is refused, the share is held.
	first := flood(t, "127.0.0.2", addr, 5)
	ln.waitLimited(t, 1)
	flood(t, "127.0.0.3", addr, 3)
	ln.waitLimited(t, 2)

	if _, _, err := connectFrom(t, ln, "127.0.0.4", server, client); err == nil {
		t.Fatal("a client connected while every handshake was taken")
	}
	ln.waitLimited(t, 3)
	closeAll(first)
	cc, sc := connectEventually(t, ln, "127.0.0.4", server, client)
	echoOnce(t, cc, sc, "after the flood")
}

// TestConnLimits: established connections count against their address's
// share and the total until they close.
func TestConnLimits(t *testing.T) {
	server, client := ids(t)
	ln := listenLimited(t, server, muxconn.Limits{Conns: 3, ConnsPerAddr: 2})
	a1, _ := connectEventually(t, ln, "127.0.0.2", server, client)
	connectEventually(t, ln, "127.0.0.2", server, client)
	if _, _, err := connectFrom(t, ln, "127.0.0.2", server, client); err == nil {
		t.Fatal("a third connection from one address with a share of 2")
	}
	ln.waitLimited(t, 1)
	connectEventually(t, ln, "127.0.0.3", server, client)
	if _, _, err := connectFrom(t, ln, "127.0.0.4", server, client); err == nil {
		t.Fatal("a fourth connection with a total of 3")
	}
	ln.waitLimited(t, 2)
	_ = a1.CloseWithError(0, "")
	connectEventually(t, ln, "127.0.0.4", server, client)
}

// TestAuthenticationEndsHandshake: a connection counts among unfinished
// handshakes through TLS, a WebSocket's upgrade and the multiplexer, until
// the server knows its client (Authenticated): with one handshake allowed
// per address, a second connection from it is refused until the server
// authenticated the first, over TCP and over a WebSocket alike.
func TestAuthenticationEndsHandshake(t *testing.T) {
	server, client := ids(t)
	ln := listenLimited(t, server, muxconn.Limits{HandshakesPerAddr: 1})
	addr := ln.Addr().String()
	for _, d := range []muxconn.Dialer{muxconn.WSSDialer{Addr: addr}, muxconn.TCPDialer{Addr: addr}} {
		_, sc := pairVia(t, ln.Listener, d, server, client)
		refused := ln.limited.Load()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if c, err := d.Dial(ctx, client.PinnedClientConfig(server.DER(), alpn)); err == nil {
			// A refusal can come after the client's handshake: the
			// connection then ends.
			select {
			case <-c.Context().Done():
			case <-ctx.Done():
				t.Fatalf("%s: a second connection while the first was not authenticated", d.Transport())
			}
		}
		cancel()
		ln.waitLimited(t, refused+1)
		muxconn.Authenticated(sc)
		_, next := pairVia(t, ln.Listener, d, server, client)
		muxconn.Authenticated(next)
	}
}
