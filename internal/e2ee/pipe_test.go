package e2ee

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
)

var errReset = errors.New("stream reset")

// bpipe is a buffered in-memory pipe: writes never wait for the reader,
// as with a real stream's send buffer.
type bpipe struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  bytes.Buffer
	err  error // set once the writer closed
	rerr error // set once the reader closed
}

func newBpipe() *bpipe {
	p := &bpipe{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *bpipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.buf.Len() == 0 && p.err == nil && p.rerr == nil {
		p.cond.Wait()
	}
	if p.rerr != nil {
		return 0, p.rerr
	}
	if p.buf.Len() > 0 {
		return p.buf.Read(b)
	}
	return 0, p.err
}

func (p *bpipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return 0, io.ErrClosedPipe
	}
	if p.rerr != nil {
		return 0, p.rerr
	}
	p.buf.Write(b)
	p.cond.Broadcast()
	return len(b), nil
}

// closeWrite ends the data with err (io.EOF for a clean end).
func (p *bpipe) closeWrite(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
	p.cond.Broadcast()
}

// closeRead makes reads and writes fail with err.
func (p *bpipe) closeRead(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rerr == nil {
		p.rerr = err
	}
	p.cond.Broadcast()
}

// resetPipes fails every read and write of ps, which ends the goroutines
// that copy between them.
func resetPipes(ps ...*bpipe) {
	for _, p := range ps {
		p.closeWrite(errReset)
		p.closeRead(errReset)
	}
}

// end is one side of an in-memory stream: it reads what the middle
// forwards to it and writes to the middle.
type end struct {
	r *bpipe
	w *bpipe
}

func (e *end) Read(b []byte) (int, error)       { return e.r.Read(b) }
func (e *end) Write(b []byte) (int, error)      { return e.w.Write(b) }
func (e *end) CloseWrite() error                { e.w.closeWrite(io.EOF); return nil }
func (e *end) Close() error                     { e.w.closeWrite(io.EOF); e.r.closeRead(io.ErrClosedPipe); return nil }
func (e *end) Reset()                           { e.w.closeWrite(errReset); e.r.closeRead(errReset) }
func (e *end) SetDeadline(time.Time) error      { return nil }
func (e *end) SetReadDeadline(time.Time) error  { return nil }
func (e *end) SetWriteDeadline(time.Time) error { return nil }

// mangler decides what the middle forwards for the i-th frame (2-byte
// length prefix included) of one direction.
type mangler func(i int, frame []byte) [][]byte

// hop forwards one direction, frame by frame, through mangle; seen gets
// every byte that crossed. raw forwards bytes without framing (for TLS).
type hop struct {
	mangle mangler
	mu     sync.Mutex
	seen   []byte
	// In raw mode, absolute byte offsets of this direction at which to
	// flip a bit and after which to cut the stream; -1 for none.
	flipAt, cutAt int
	// discard skips recording (benchmarks).
	discard bool
}

func (h *hop) run(src io.Reader, dst *bpipe, raw bool) {
	defer dst.closeWrite(io.EOF)
	if raw {
		buf := make([]byte, 4096)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				chunk, cut := h.rawChunk(buf[:n])
				if _, werr := dst.Write(chunk); werr != nil || cut {
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					dst.closeWrite(err)
				}
				return
			}
		}
	}
	for i := 0; ; i++ {
		var hdr [2]byte
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			if err != io.EOF {
				dst.closeWrite(err)
			}
			return
		}
		frame := make([]byte, 2+int(binary.BigEndian.Uint16(hdr[:])))
		copy(frame, hdr[:])
		if _, err := io.ReadFull(src, frame[2:]); err != nil {
			dst.closeWrite(err)
			return
		}
		h.record(frame)
		out := [][]byte{frame}
		if h.mangle != nil {
			out = h.mangle(i, frame)
		}
		for _, f := range out {
			if f == nil { // truncate here
				return
			}
			if _, err := dst.Write(f); err != nil {
				return
			}
		}
	}
}

// rawChunk records b and applies the armed flip and cut to it.
func (h *hop) rawChunk(b []byte) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.discard {
		return b, false
	}
	start := len(h.seen)
	h.seen = append(h.seen, b...)
	b = bytes.Clone(b)
	if h.flipAt >= start && h.flipAt < start+len(b) {
		b[h.flipAt-start] ^= 0x40
	}
	if h.cutAt >= 0 && h.cutAt < start+len(b) {
		return b[:max(0, h.cutAt-start)], true
	}
	return b, false
}

// arm sets the raw flip and cut offsets relative to what has crossed so
// far (-1 for none).
func (h *hop) arm(flipAfter, cutAfter int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.flipAt, h.cutAt = -1, -1
	if flipAfter >= 0 {
		h.flipAt = len(h.seen) + flipAfter
	}
	if cutAfter >= 0 {
		h.cutAt = len(h.seen) + cutAfter
	}
}

func (h *hop) record(b []byte) {
	h.mu.Lock()
	if !h.discard {
		h.seen = append(h.seen, b...)
	}
	h.mu.Unlock()
}

func (h *hop) bytes() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]byte(nil), h.seen...)
}

// link is an initiator end and a responder end joined through a middle.
type link struct {
	a, b       *end
	aToB, bToA *hop
}

func newLink(t testing.TB, raw bool, aToB, bToA mangler) *link {
	t.Helper()
	aToMiddle, middleToB := newBpipe(), newBpipe()
	bToMiddle, middleToA := newBpipe(), newBpipe()
	l := &link{
		a:    &end{r: middleToA, w: aToMiddle},
		b:    &end{r: middleToB, w: bToMiddle},
		aToB: &hop{mangle: aToB, flipAt: -1, cutAt: -1},
		bToA: &hop{mangle: bToA, flipAt: -1, cutAt: -1},
	}
	go l.aToB.run(aToMiddle, middleToB, raw)
	go l.bToA.run(bToMiddle, middleToA, raw)
	t.Cleanup(func() { l.a.Reset(); l.b.Reset() })
	return l
}

func newID(t testing.TB) *identity.Identity {
	t.Helper()
	id, err := identity.Generate("e2ee-test")
	if err != nil {
		t.Fatal(err)
	}
	return id
}
