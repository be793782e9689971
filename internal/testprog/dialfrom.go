package testprog

import (
	"net"
	"testing"
	"time"
)

// DialFrom opens a TCP connection to addr from the loopback address from:
// all of 127.0.0.0/8 is this host's, so a test can play several hosts
// (one flooding, one connecting). The connection is closed when the test
// ends, if not before.
func DialFrom(t testing.TB, from, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, nil
}
