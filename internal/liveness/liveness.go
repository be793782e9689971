// Package liveness notices when a connection stops receiving. A live
// peer answers every keepalive within a round trip, so silence past
// tuning.StaleAfter means the peer or the path is gone, long before the
// idle timeout closes the connection.
//
// It also pokes a connection that stops receiving in the middle of
// traffic: it sends one small datagram right away instead of waiting for
// the next keepalive. The common cause of such a silence is a NAT on this
// side that forgot the mapping (rebooted, flushed, out of table space):
// the peer's packets die there, and nothing goes out to create the
// mapping again while this side only receives, so the transfer would stall
// until this side's keepalive, and then the peer's backed-off
// retransmission (about 7 s in the lab). The poke goes out at once and
// restores the mapping (the same port behind a cone NAT; a new one behind
// a fully-random NAT, which the peer takes as a migration).
package liveness

import (
	"context"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/quic-go/quic-go"
)

const (
	// healthTick is how often a watched connection's packet count is
	// sampled; it bounds how late a poke goes out.
	healthTick = 250 * time.Millisecond
	// busyPackets: a tick that received more packets than this carried
	// traffic, more than a keepalive exchange (one packet each way).
	busyPackets = 2
)

// pokeMessage is the poke's payload: peers ignore received datagrams (they
// never read them; quic-go keeps a bounded queue and drops the rest).
var pokeMessage = []byte{0}

// Health tracks when a connection last received a packet.
type Health struct {
	mu       sync.Mutex
	received uint64
	since    time.Time
	busy     bool // the last tick received traffic
}

// Conn is what liveness needs of a connection (muxconn.Conn has it, for
// QUIC and for the TCP transports alike).
type Conn interface {
	// Received grows whenever something arrives.
	Received() uint64
	Context() context.Context
	CloseWithError(code quic.ApplicationErrorCode, reason string) error
}

// datagramSender is a connection that can send an unreliable datagram
// (QUIC): the poke needs one. Over TCP, the kernel's retransmissions do
// the poke's work.
type datagramSender interface {
	SendDatagram(b []byte) error
}

// Watch samples conn's received count until the connection ends, on a
// goroutine in owner: the owner waits for it after closing conn.
func Watch(conn Conn, owner *sync.WaitGroup) *Health {
	return watch(conn, owner, nil)
}

// watch is Watch that also calls onStale, and stops, once the connection
// goes silent (onStale nil: never).
func watch(conn Conn, owner *sync.WaitGroup, onStale func()) *Health {
	h := &Health{received: conn.Received(), since: time.Now()}
	owner.Go(func() {
		t := time.NewTicker(healthTick)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				if h.observe(conn.Received(), now) {
					poke(conn)
				}
				if onStale != nil && h.Stale() {
					onStale()
					return
				}
			case <-conn.Context().Done():
				return
			}
		}
	})
	return h
}

// poke sends conn one small datagram, where it can.
func poke(conn Conn) {
	if d, ok := conn.(datagramSender); ok {
		// Fails only if the peer does not take datagrams (an older
		// version) or the connection is closing.
		_ = d.SendDatagram(pokeMessage)
	}
}

// observe records the received-packet count sampled at now, and tells
// whether to poke: traffic stopped since the previous tick.
func (h *Health) observe(received uint64, now time.Time) (poke bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := received - h.received
	poke = n == 0 && h.busy
	h.busy = n > busyPackets
	if n != 0 {
		h.received, h.since = received, now
	}
	return poke
}

// Stale tells whether the connection received nothing for
// tuning.StaleAfter.
func (h *Health) Stale() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Since(h.since) > tuning.StaleAfter
}

// CloseWhenStale closes conn with code once it goes silent, and returns
// its health; its goroutine is in owner, which waits for it after closing
// conn. Servers use it to drop dead clients quickly, so their peers learn
// of it in seconds; clients, to redial a server or relay that died without
// its close reaching them.
func CloseWhenStale(conn Conn, code quic.ApplicationErrorCode, owner *sync.WaitGroup) *Health {
	return watch(conn, owner, func() {
		_ = conn.CloseWithError(code, "no packets received: peer or path gone")
	})
}
