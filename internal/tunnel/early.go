package tunnel

import (
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/p2pconnet/connet/internal/path"
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
// What was sent is kept (at most EarlyMax bytes) until a destination
// accepts: if one refuses, the next stream of the same connection carries
// it again, so a load balancer's retry loses nothing (see MayRetry for the
// failures that end the connection instead).
type Early struct {
	// From is the client's connection. It is read only while an answer is
	// awaited, and a read still waiting when the answer comes is cut short
	// with a deadline in the past, which loses no data.
	From net.Conn
	// Sent is what has been read from From and sent so far.
	Sent []byte
	// err is how reading From failed, other than by ending (a clean end
	// is seen again by the next read, so it is left for the splice).
	err error
}

// MayRetry tells whether, after Open failed with err, the connection may
// be tried on another path or destination. A refusal means the
// destination passed nothing on, so the bytes sent early can go again; any
// other failure (a reset, a path that died, no answer in time) after bytes
// went early may have reached the destination's service already, and
// sending them again could repeat a request. A failed client ends it too.
// e may be nil.
func (e *Early) MayRetry(err error) bool {
	if errors.Is(err, ErrClientFailed) {
		return false
	}
	return IsRefusal(err) || e == nil || len(e.Sent) == 0
}

// start reads what From sends and writes it to s behind the request, until
// From ends or EarlyMax bytes were sent, or stop is called. stop cuts a
// read still waiting short and returns once reading has stopped, leaving
// From without a read deadline.
func (e *Early) start(s path.Stream) (stop func()) {
	if e == nil || e.From == nil || len(e.Sent) >= EarlyMax {
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

// copyTo is start's reading loop.
func (e *Early) copyTo(s path.Stream) {
	buf := make([]byte, EarlyMax-len(e.Sent))
	for len(buf) > 0 {
		n, err := e.From.Read(buf)
		if n > 0 {
			e.Sent = append(e.Sent, buf[:n]...)
			buf = buf[n:]
			if _, werr := s.Write(e.Sent[len(e.Sent)-n:]); werr != nil {
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
