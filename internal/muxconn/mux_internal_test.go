package muxconn

import (
	"crypto/tls"
	"net"
	"testing"
)

// TestCloseJoinsAcceptLoop: CloseWithError returns only once the goroutine
// that accepts the peer's streams has ended, on both sides of a session.
func TestCloseJoinsAcceptLoop(t *testing.T) {
	a, b := net.Pipe()
	client, err := clientMux(a, tls.ConnectionState{}, TCP)
	if err != nil {
		t.Fatal(err)
	}
	server, err := serverMux(b, tls.ConnectionState{}, TCP, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Conn{client, server} {
		_ = c.CloseWithError(0, "done")
		select {
		case <-c.(*muxConn).acceptDone:
		default:
			t.Fatalf("%v: CloseWithError returned before its accept loop ended", c.Transport())
		}
	}
}
