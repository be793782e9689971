package tunnel

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Each direction of a splice reads into a small buffer of its own while it
// waits, and takes a big pooled buffer only once data is flowing: an idle
// connection, which spends its life blocked in Read, then holds 2×smallSize
// instead of 2×bufSize (10 000 idle connections: 40 MiB, not 1.25 GiB).
const (
	// smallSize is the buffer a direction waits with, and all that a trickle
	// of small messages (keystrokes, RPCs) ever uses.
	smallSize = 2 << 10
	// bufSize is the buffer of a burst: big enough that a QUIC stream gets
	// full packets and few syscalls per megabyte.
	bufSize = 64 << 10
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// bigHeld counts the big buffers taken from bufPool and not yet returned.
var bigHeld atomic.Int64

// HalfCloser is a connection whose sending direction can end on its own.
type HalfCloser interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// Counted is a connection told what a splice carried through it, once,
// when both directions have ended and before it is closed: sent is what
// was written to it, received what was read from it. Tunnelled
// connections count their bytes this way, per connection rather than per
// write.
type Counted interface {
	Spliced(sent, received int64)
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
	if c, ok := a.(Counted); ok {
		c.Spliced(ba, ab)
	}
	if c, ok := b.(Counted); ok {
		c.Spliced(ab, ba)
	}
	_ = a.Close()
	_ = b.Close()
	return ab, ba
}

// pipe copies src to dst. A clean end of src becomes a half-close of dst;
// an error aborts both, so each far side sees a reset rather than a clean
// end that would hide truncation. A read failing with net.ErrClosed means
// the other direction aborted this connection already.
func pipe(dst, src HalfCloser) int64 {
	var n int64
	err := copyData(dst, src, &n)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		abort(src)
		abort(dst)
		return n
	}
	_ = dst.CloseWrite()
	return n
}

// copyData copies src to dst until src ends (nil) or either fails. It
// waits for data with the small buffer; a read that fills it suggests more
// is queued, and the rest of the burst goes through a big buffer.
func copyData(dst io.Writer, src io.Reader, n *int64) error {
	small := make([]byte, smallSize)
	for {
		k, err := src.Read(small)
		if werr := writeAll(dst, small[:k], n); werr != nil {
			return werr
		}
		if err == nil && k == len(small) {
			err = burst(dst, src, n)
		}
		if err == io.EOF { // only a bare EOF is a clean end; a wrapped one reports a failure
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// burst copies through a big pooled buffer for as long as reads fill it.
// A short read means src had no more queued, so the next read would
// probably block: the buffer goes back to the pool rather than wait with
// it.
func burst(dst io.Writer, src io.Reader, n *int64) error {
	bp := bufPool.Get().(*[]byte)
	bigHeld.Add(1)
	defer func() {
		bigHeld.Add(-1)
		bufPool.Put(bp)
	}()
	buf := *bp
	for {
		k, err := src.Read(buf)
		if werr := writeAll(dst, buf[:k], n); werr != nil {
			return werr
		}
		if err != nil || k < len(buf) {
			return err
		}
	}
}

// writeAll writes b to dst, adding what was written to n.
func writeAll(dst io.Writer, b []byte, n *int64) error {
	if len(b) == 0 {
		return nil
	}
	k, err := dst.Write(b)
	*n += int64(k)
	if err == nil && k < len(b) {
		err = io.ErrShortWrite
	}
	return err
}

// Resetter is a connection that can end with an error the far side sees,
// as QUIC streams do.
type Resetter interface{ Reset() }

// abort ends c so that its far side sees an error, not a clean end: a
// Resetter is reset; a TCP socket, bare or under wrappers that expose it
// with NetConn (as *tls.Conn does), is closed with linger 0, which sends an
// RST instead of a FIN; anything else can only be closed.
func abort(c HalfCloser) {
	if r, ok := c.(Resetter); ok {
		r.Reset()
		return
	}
	if tc := tcpConnOf(c); tc != nil {
		_ = tc.SetLinger(0)
		// The socket closes before its wrapper: closing a *tls.Conn first
		// would send close_notify, TLS's clean end of data.
		_ = tc.Close()
	}
	_ = c.Close()
}

// maxUnwrap bounds the NetConn chain followed to a TCP socket, in case a
// wrapper returns itself.
const maxUnwrap = 8

// tcpConnOf returns the TCP socket under c, or nil.
func tcpConnOf(c any) *net.TCPConn {
	for range maxUnwrap {
		switch v := c.(type) {
		case *net.TCPConn:
			return v
		case fullCloser:
			c = v.Conn
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

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
