package controlclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// A QUIC handshake to a server that is down gets no answer, the same as
// one whose UDP a firewall drops: quic-go's socket is not connected, so
// the ICMP "port unreachable" a host answers for a closed port never
// reaches it, and the dial times out either way. A connected UDP socket
// does hear it: its next read fails with ECONNREFUSED. watchRefusal sends
// the server empty datagrams from one, so that the session can tell "the
// server is not running (or its host refuses UDP)" from "nothing
// answers (UDP may be blocked)". A running server drops them: an empty
// datagram is no QUIC packet.

// refusalProbes bounds the datagrams one watch sends, one every
// refusalInterval (a lost ICMP answer gets another chance).
const (
	refusalProbes   = 20
	refusalInterval = 250 * time.Millisecond
)

// refusedError is a QUIC dial that the server's host refused: it answered
// that nothing receives UDP at the server's port.
type refusedError struct {
	Addr string
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("quic to %s: connection refused (nothing receives UDP at that port)", e.Addr)
}

// Unwrap lets errors.Is match syscall.ECONNREFUSED, as for a refused TCP
// dial.
func (e *refusedError) Unwrap() error { return syscall.ECONNREFUSED }

// watchRefusal probes addr (see above) until its host refuses (true), or
// until ctx ends or the probes are spent (false): no refusal is no news.
func watchRefusal(ctx context.Context, addr *net.UDPAddr) bool {
	c, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		return false // no probe; the QUIC dial still says what it can
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) })
	defer stop()
	var buf [1]byte
	for range refusalProbes {
		if ctx.Err() != nil {
			return false
		}
		if _, err := c.Write(nil); err != nil {
			return errors.Is(err, syscall.ECONNREFUSED)
		}
		_ = c.SetReadDeadline(time.Now().Add(refusalInterval))
		if ctx.Err() != nil {
			return false // ended while the deadline was set: do not wait it out
		}
		if _, err := c.Read(buf[:]); errors.Is(err, syscall.ECONNREFUSED) {
			return true
		}
	}
	return false
}
