package tunnel

import (
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/p2pconnet/connet/internal/netpath"
)

// EarlyMax bounds the first bytes of a connection that travel right behind
// its stream request, before the destination has answered. It is what a
// client's first flight usually fits in (an HTTP request with its headers,
// a TLS ClientHello); the rest waits for the answer, as everything did
// before.
const EarlyMax = 16 << 10

// ErrClientFailed is what Open returns when the client of an Early
// connection failed (reset) while the destination was being asked: there
// is nothing left to open a connection for, so no other path or
// destination is tried.
var ErrClientFailed = errors.New("the client's connection failed")

// Early is the start of a connection the source accepted: what its client
// sends while the stream request is on its way goes right behind the
// request instead of after the destination's answer, which saves a round
// trip through the tunnel on every new connection whose client speaks
// first. Nothing waits for it: a client that waits for its server (SSH,
// SMTP) sends nothing, and its connection starts when the answer comes, as
// without Early.
//
// Bytes that went early were taken from the client's socket and may have
// reached the destination's service, so they cannot go to another: once
// any went, the connection stays with that stream (see MayRetry), and a
// caller that may fail over to another destination passes no Early to the
// ones before its last.
type Early struct {
	// From is the client's connection. It is read only while an answer is
	// awaited, and a read still waiting when the answer comes is cut short
	// with a deadline in the past, which loses no data.
	From net.Conn
	// Sent counts the bytes taken from From and written behind the
	// request (a failed write ends the stream, and the connection with it:
	// those bytes are gone from the client's socket).
	Sent int
	// err is how reading From failed, other than by ending (a clean end
	// is seen again by the next read, so it is left for the splice).
	err error
}

// MayRetry tells whether, after Open failed with err, the connection may
// be tried on another path or destination: only if nothing went early and
// the client is still there. e may be nil.
func (e *Early) MayRetry(err error) bool {
	return !errors.Is(err, ErrClientFailed) && (e == nil || e.Sent == 0)
}

// start reads what From sends and writes it to s behind the request, until
// From ends or EarlyMax bytes were sent, or stop is called. stop cuts a
// read still waiting short and returns once reading has stopped, leaving
// From without a read deadline.
func (e *Early) start(s netpath.Stream) (stop func()) {
	if e == nil || e.From == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.copyTo(s)
	}()
	return func() {
		_ = e.From.SetReadDeadline(time.Unix(1, 0))
		<-done
		_ = e.From.SetReadDeadline(time.Time{})
	}
}

// takeQueued appends to buf what the client has sent by now, without
// waiting, within EarlyMax and buf's capacity. The source's accept usually
// runs after its client wrote its first flight, so the request and those
// bytes go out in one write, in one packet, rather than one behind the
// other. Only a bare TCP socket can be read without waiting; anything else
// is left to start's reading.
func (e *Early) takeQueued(buf []byte) []byte {
	if e == nil || e.From == nil {
		return buf
	}
	r := socketReaderOf(e.From)
	if r == nil {
		return buf
	}
	room := min(EarlyMax-e.Sent, cap(buf)-len(buf))
	n, err := r.readNow(buf[len(buf) : len(buf)+room])
	switch {
	case err == nil:
		e.Sent += n
		return buf[:len(buf)+n]
	case err != errWouldBlock && !errors.Is(err, io.EOF):
		// A socket reports a reset once, and then an end: keep it, as
		// copyTo does, for Ask to see. A clean end is seen again by the
		// next read.
		e.err = err
	}
	return buf
}

// copyTo is start's reading loop.
func (e *Early) copyTo(s netpath.Stream) {
	bp := takeBig()
	defer putBig(bp)
	buf := (*bp)[:EarlyMax]
	for e.Sent < EarlyMax {
		n, err := e.From.Read(buf[e.Sent:])
		if n > 0 {
			_, werr := s.Write(buf[e.Sent : e.Sent+n])
			e.Sent += n
			if werr != nil {
				return // the stream failed: its answer says so
			}
		}
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, io.EOF) {
				e.err = err
			}
			return
		}
	}
}
