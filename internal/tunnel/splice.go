package tunnel

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// A direction of a splice that reads a TCP socket waits for data holding no
// buffer and reads with pooled ones (see copySocket); any other source
// (a QUIC stream, a TLS connection) is read into a small buffer of its own
// while it waits, and a big pooled buffer is taken only once data is
// flowing. An idle tunnelled connection, which spends its life blocked
// waiting, then holds smallSize on each client instead of 2×bufSize
// (10 000 idle connections: 5 MiB, not 1.25 GiB).
const (
	// smallSize is the buffer a direction waits with, and all that a trickle
	// of small messages (keystrokes, RPCs) ever uses. No more than 512
	// bytes, since every idle tunnelled connection holds one (issue 10:
	// at most 16 KiB of a client's RSS per idle connection in all); a
	// message that does not fit costs a big buffer's trip to the pool and
	// back, not an allocation.
	smallSize = 512
	// bufSize is the buffer of a burst: big enough that a QUIC stream gets
	// full packets and few syscalls per megabyte.
	bufSize = 64 << 10
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// smallPool holds the small buffers of directions that wait without one
// (see copySocket): a burst of small messages on many connections at once
// then borrows 512 bytes each, not 64 KiB.
var smallPool = sync.Pool{New: func() any { b := make([]byte, smallSize); return &b }}

// bigHeld counts the big buffers taken from bufPool and not yet returned;
// smallHeld the small buffers directions hold (their own, or borrowed from
// smallPool).
var bigHeld, smallHeld atomic.Int64

// takeBig takes a big buffer from the pool; putBig returns it.
func takeBig() *[]byte {
	bigHeld.Add(1)
	return bufPool.Get().(*[]byte)
}

func putBig(bp *[]byte) {
	bigHeld.Add(-1)
	bufPool.Put(bp)
}

// HalfCloser is a connection whose sending direction can end on its own.
type HalfCloser interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// Splice copies both ways between a and b until both directions have
// ended, propagating each end of data as a half-close, then closes both.
// It returns the bytes copied a→b and b→a.
func Splice(a, b HalfCloser) (ab, ba int64) {
	return (&splice{a: a, b: b}).run()
}

// splice is one connection copied both ways between two ends.
type splice struct {
	a, b HalfCloser
	// aborted aborts both ends once. A Once, because its Do returns only
	// when the abort is done: a direction that fails because the other
	// (or Splices.Stop) is aborting must not go on to close the ends
	// before both are reset, or a stream still open would end with a FIN.
	aborted sync.Once
}

func (s *splice) run() (ab, ba int64) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ba = s.pipe(s.a, s.b)
	}()
	ab = s.pipe(s.b, s.a)
	wg.Wait()
	_ = s.a.Close()
	_ = s.b.Close()
	return ab, ba
}

// pipe copies src to dst. A clean end of src (a bare io.EOF) becomes a
// half-close of dst. Any other end aborts both ends, so each far side sees
// a reset rather than a clean end that would hide truncation; that
// includes the loss of the connection under a stream (an idle timeout, a
// stateless reset, the peer's or our own close of the whole connection),
// which QUIC reports as an error matching net.ErrClosed. Once both ends
// are aborted, the other direction fails too; abort does nothing more then.
func (s *splice) pipe(dst, src HalfCloser) int64 {
	var n int64
	if err := copyData(dst, src, &n); err != nil {
		s.abort()
		return n
	}
	_ = dst.CloseWrite()
	return n
}

// abort ends both ends so that their far sides see errors, once; every
// call returns after both are aborted.
func (s *splice) abort() {
	s.aborted.Do(func() {
		abort(s.a)
		abort(s.b)
	})
}

// copyData copies src to dst until src ends (nil) or either fails. A TCP
// socket is waited on without a buffer and read with pooled ones (see
// copySocket). Anything else is waited on with the small buffer; a read
// that fills it suggests more is queued, and the rest of the burst goes
// through a big buffer.
func copyData(dst io.Writer, src io.Reader, n *int64) error {
	if r := socketReaderOf(src); r != nil {
		return copySocket(dst, r, n)
	}
	small := make([]byte, smallSize)
	smallHeld.Add(1)
	defer smallHeld.Add(-1)
	for {
		k, err := src.Read(small)
		if werr := writeAll(dst, small[:k], n); werr != nil {
			return werr
		}
		if err == nil && k == len(small) {
			err = sharedBurst(dst, src, n)
		}
		if err == io.EOF { // only a bare EOF is a clean end; a wrapped one reports a failure
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// socketReader reads a socket without blocking reads (see socketReaderOf).
type socketReader struct {
	// waitSmall waits until the socket has something to read (data, an
	// end or an error) holding no buffer, then reads it into a small
	// pooled buffer, which the caller returns to smallPool. readNow reads
	// what is queued, or fails with errWouldBlock when nothing is.
	waitSmall func() (*[]byte, int, error)
	readNow   func([]byte) (int, error)
	// The callbacks' scratch space.
	small *[]byte
	buf   []byte
	n     int
	err   error
}

// errWouldBlock is a socketReader's readNow finding nothing queued.
var errWouldBlock = errors.New("tunnel: nothing queued")

// copySocket copies a socket's data to dst like copyData: an idle
// direction holds no buffer at all. Data is read into a small pooled
// buffer, and only if that fills does the rest of what is queued go
// through a big one.
func copySocket(dst io.Writer, r *socketReader, n *int64) error {
	for {
		sp, k, err := r.waitSmall()
		if sp == nil {
			return err
		}
		smallHeld.Add(1)
		var werr error
		if err == nil && k == smallSize {
			// Maybe more is queued: what was read goes out in front of
			// it, in one write rather than two (a small write costs a
			// syscall or a packet of its own).
			err = burst(dst, r.readNow, n, (*sp)[:k])
		} else {
			werr = writeAll(dst, (*sp)[:k], n)
		}
		smallHeld.Add(-1)
		smallPool.Put(sp)
		if werr != nil {
			return werr
		}
		if err == io.EOF { // only a bare EOF is a clean end, as in copyData
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
// it; so does a read that fails with errWouldBlock, which is not an error.
// head, read already and not yet written, goes out in front of the first
// read's bytes; it is passed only with a read that does not block.
func burst(dst io.Writer, read func([]byte) (int, error), n *int64, head []byte) error {
	bp := takeBig()
	defer putBig(bp)
	buf := *bp
	carried := copy(buf, head)
	for {
		k, err := read(buf[carried:])
		drained := err == errWouldBlock
		if drained {
			err = nil
		}
		k += carried
		carried = 0
		if werr := writeAll(dst, buf[:k], n); werr != nil {
			return werr
		}
		if drained || err != nil || k < len(buf) {
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

// Abort closes c so that its far side sees an error (a TCP reset) rather
// than a clean end.
func Abort(c net.Conn) { abort(TCP(c)) }

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
