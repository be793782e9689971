package muxconn

import (
	"errors"
	"sync"

	"github.com/libp2p/go-yamux/v5"
)

// yamux has no connection-level flow control: every stream may receive
// StreamWindow bytes before its reader reads any (the protocol fixes it;
// yamux refuses a smaller initial window), and a window grows as its
// reader keeps up. Left alone, a client could make a server buffer that
// much for every stream it opens, before proving who it is. A server
// session therefore counts the windows of its streams (yamux asks its
// memory manager before it gives a stream a window, or grows one):
//
//   - until the server admits the client (Admit), the client may hold
//     handshakeStreams streams, and their windows do not grow; yamux's
//     only answer to a stream it cannot give a window is to end the
//     session, which is what a client that does not wait for its
//     admission gets;
//   - once admitted, the windows may grow while the session's total stays
//     within the budget Admit sets, the growth within half of it (so a
//     few fast streams cannot leave no room for new ones). yamux cannot
//     refuse a new stream without ending the session, so the server asks
//     HasWindowRoom before it takes on another stream, and refuses the
//     stream itself when there is no room.
//
// A server whose protocol needs no more than the handshake's streams and
// small messages (the control server) need not admit anyone.

// StreamWindow is the receive window every yamux stream starts with: what
// a stream can hold unread at the least.
const StreamWindow = 256 << 10

// handshakeStreams is how many streams a client may hold before it is
// admitted: the one a handshake uses (a grant, a hello) and one to spare.
const handshakeStreams = 2

// errNotAdmitted refuses a stream beyond handshakeStreams, or a window's
// growth, before the server admitted the client.
var errNotAdmitted = errors.New("muxconn: not admitted yet")

// errWindowBudget refuses a window's growth beyond the budget.
var errWindowBudget = errors.New("muxconn: stream windows at their budget")

// windowBudget counts the receive windows of one server session's
// streams. Its spans are yamux's memory managers, one per stream.
type windowBudget struct {
	mu       sync.Mutex
	admitted bool
	// limit is the budget Admit set; reserved is what the open streams'
	// windows hold in all, grown the part of it from windows' growth.
	limit, reserved, grown int64
	// streams counts the streams holding a window.
	streams int
}

// span is yamux's hook, called for every stream it opens or accepts.
func (b *windowBudget) span() (yamux.MemoryManager, error) { return &streamWindow{b: b}, nil }

func (b *windowBudget) admit(limit int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.admitted = true
	b.limit = limit
}

// room is what the windows may still take, negative when over budget.
func (b *windowBudget) room() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.admitted {
		return 0
	}
	return b.limit - b.reserved
}

// streamWindow is one stream's share of a windowBudget, as yamux's
// MemoryManager for the stream. Its fields are guarded by b.mu.
type streamWindow struct {
	b *windowBudget
	// opened is set by the stream's first reservation, its initial
	// window; done once the stream ended.
	opened, done bool
	// held is what the stream reserved in all, grown the part of it
	// from its window's growth.
	held, grown int64
}

// ReserveMemory is asked first for the stream's initial window, then for
// each growth of it.
func (s *streamWindow) ReserveMemory(size int, _ uint8) error {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	n := int64(size)
	switch {
	case s.done:
		return errWindowBudget
	case !s.opened:
		// A new stream: refused only before admission (after it, the
		// server refuses streams itself; see HasWindowRoom).
		if !b.admitted && b.streams >= handshakeStreams {
			return errNotAdmitted
		}
		s.opened = true
		b.streams++
	case !b.admitted:
		return errNotAdmitted
	case b.grown+n > b.limit/2 || b.reserved+n > b.limit:
		return errWindowBudget
	default:
		s.grown += n
		b.grown += n
	}
	s.held += n
	b.reserved += n
	return nil
}

// ReleaseMemory gives size bytes back (yamux v5.1 never does: a stream's
// windows go back together when it ends).
func (s *streamWindow) ReleaseMemory(size int) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(int64(size), s.held)
	g := min(n, s.grown)
	s.held -= n
	s.grown -= g
	b.reserved -= n
	b.grown -= g
}

// Done ends the stream's share: its windows go back to the budget. It
// may come twice for a stream whose opening failed.
func (s *streamWindow) Done() {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.done {
		return
	}
	s.done = true
	b.reserved -= s.held
	b.grown -= s.grown
	if s.opened {
		b.streams--
	}
	s.held, s.grown = 0, 0
}

// Admit lifts the limits c held its client to before the server admitted
// it (a server-side yamux session allows the streams a handshake needs,
// with windows that do not grow), and gives the client's stream windows a
// budget of windows bytes in all; it is Authenticated too. A QUIC
// connection needs nothing: its connection window bounds what it buffers
// (see tuning.QUIC).
func Admit(c Conn, windows int64) {
	Authenticated(c)
	if m, ok := c.(*muxConn); ok && m.windows != nil {
		m.windows.admit(windows)
	}
}

// Authenticated tells the Listener that accepted c that the server knows
// its client (its hello or its grant checked out). Until then the
// connection counts among the listener's unfinished handshakes, whose
// limits are far tighter than those on connections: TLS with a
// certificate of its own making proves nothing, and such a client would
// otherwise hold a connection, its buffers and its handshake streams'
// windows under the loose limits for as long as the server waits for it.
// Nothing for a connection that no Listener accepted (QUIC's).
func Authenticated(c Conn) {
	if m, ok := c.(*muxConn); ok && m.authenticated != nil {
		m.authenticated()
	}
}

// HasWindowRoom tells whether c's stream windows have n bytes of room
// left in their budget: whether a server should take on another stream
// of the client (n = StreamWindow before opening one towards it, 0 for
// one it opened, whose window is counted already). Always true for a
// connection without a budget: QUIC's, a client's.
func HasWindowRoom(c Conn, n int64) bool {
	if m, ok := c.(*muxConn); ok && m.windows != nil {
		return m.windows.room() >= n
	}
	return true
}
