package tunnel

import (
	"errors"
	"io"
	"net"
	"sync"
)

// bufSize is the copy buffer per direction: big enough that a QUIC stream
// gets full packets and few syscalls per megabyte, small enough that 10 000
// idle connections cost nothing (buffers are pooled and held only while a
// copy runs).
const bufSize = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// HalfCloser is a connection whose sending direction can end on its own.
type HalfCloser interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// Splice copies both ways between a and b until both directions have
// ended, propagating each end of data as a half-close, then closes both.
// It returns the bytes copied a→b and b→a.
func Splice(a, b HalfCloser) (ab, ba int64) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ba = pipe(a, b)
	}()
	ab = pipe(b, a)
	wg.Wait()
	_ = a.Close()
	_ = b.Close()
	return ab, ba
}

// pipe copies src to dst. A clean end of src becomes a half-close of dst;
// an error aborts both, so the far side sees a reset rather than a clean
// end that would hide truncation.
func pipe(dst, src HalfCloser) int64 {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	n, err := io.CopyBuffer(onlyWriter{dst}, onlyReader{src}, *bp)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		abort(src)
		abort(dst)
		return n
	}
	_ = dst.CloseWrite()
	return n
}

// Resetter is a connection that can end with an error the far side sees;
// QUIC streams are, TCP sockets close instead.
type Resetter interface{ Reset() }

func abort(c HalfCloser) {
	if r, ok := c.(Resetter); ok {
		r.Reset()
		return
	}
	_ = c.Close()
}

// onlyWriter and onlyReader hide ReadFrom/WriteTo so CopyBuffer uses our
// pooled buffer instead of allocating its own.
type onlyWriter struct{ io.Writer }
type onlyReader struct{ io.Reader }

// TCP adapts a net.Conn to HalfCloser: a *net.TCPConn or a tunnelled conn
// keeps its half-close; connections without one get a full close instead.
func TCP(c net.Conn) HalfCloser {
	if h, ok := c.(HalfCloser); ok {
		return h
	}
	return fullCloser{c}
}

type fullCloser struct{ net.Conn }

func (f fullCloser) CloseWrite() error { return f.Close() }
