// Package liveness notices when a connection stops receiving. A live
// peer answers every keepalive within a round trip, so silence past
// tuning.StaleAfter means the peer or the path is gone, long before the
// idle timeout closes the connection.
package liveness

import (
	"context"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/quic-go/quic-go"
)

// healthTick is how often a watched connection's packet count is sampled.
const healthTick = time.Second

// Health tracks when a connection last received a packet.
type Health struct {
	mu       sync.Mutex
	received uint64
	since    time.Time
}

// Conn is what liveness needs of a connection (muxconn.Conn has it, for
// QUIC and for the TCP transports alike).
type Conn interface {
	// Received grows whenever something arrives.
	Received() uint64
	Context() context.Context
	CloseWithError(code quic.ApplicationErrorCode, reason string) error
}

// Watch samples conn's received count until the connection ends.
func Watch(conn Conn) *Health {
	h := &Health{received: conn.Received(), since: time.Now()}
	go func() {
		t := time.NewTicker(healthTick)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				h.observe(conn.Received(), now)
			case <-conn.Context().Done():
				return
			}
		}
	}()
	return h
}

func (h *Health) observe(received uint64, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if received != h.received {
		h.received, h.since = received, now
	}
}

// Stale tells whether the connection received nothing for
// tuning.StaleAfter.
func (h *Health) Stale() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Since(h.since) > tuning.StaleAfter
}

// CloseWhenStale closes conn with code once it goes silent, and returns
// its health. Servers use it to drop dead clients quickly, so their peers
// learn of it in seconds; clients, to redial a server or relay that died
// without its close reaching them.
func CloseWhenStale(conn Conn, code quic.ApplicationErrorCode) *Health {
	h := Watch(conn)
	go func() {
		t := time.NewTicker(healthTick)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if h.Stale() {
					_ = conn.CloseWithError(code, "no packets received: peer or path gone")
					return
				}
			case <-conn.Context().Done():
				return
			}
		}
	}()
	return h
}
