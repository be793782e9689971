//go:build unix

package tunnel

import (
	"io"
	"net"
	"os"
	"syscall"
)

// socketReaderOf returns a reader of src's socket that waits for data
// holding no buffer; nil when src is not a bare TCP socket. A wrapper such
// as *tls.Conn may hold data its socket no longer shows, so only the
// socket itself qualifies.
func socketReaderOf(src io.Reader) *socketReader {
	tc, ok := src.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	// Both reads are non-blocking reads in RawConn.Read's callback: one
	// waits in Go's poller while the socket has nothing (and takes its
	// buffer from the pool only once it has), the other reports that it
	// has nothing. One syscall per read, as a plain Read costs. The
	// callbacks are made once per direction, so reading allocates nothing.
	r := &socketReader{}
	readPooled := func(fd uintptr) bool {
		sp := smallPool.Get().(*[]byte)
		n, err := readFD(fd, *sp)
		if err == syscall.EAGAIN {
			smallPool.Put(sp)
			return false
		}
		r.small, r.n, r.err = sp, n, err
		return true
	}
	readNow := func(fd uintptr) bool {
		r.n, r.err = readFD(fd, r.buf)
		return true
	}
	r.waitSmall = func() (*[]byte, int, error) {
		r.small = nil
		if err := rc.Read(readPooled); err != nil {
			if r.small != nil {
				smallPool.Put(r.small)
			}
			return nil, 0, err
		}
		return r.small, r.n, r.err
	}
	r.readNow = func(b []byte) (int, error) {
		r.buf = b
		err := rc.Read(readNow)
		r.buf = nil
		if err != nil {
			return 0, err
		}
		if r.err == syscall.EAGAIN {
			return 0, errWouldBlock
		}
		return r.n, r.err
	}
	return r
}

// readFD reads fd once without blocking, the way net.Conn.Read reports
// it: an end of data is io.EOF, an error is wrapped as a syscall error,
// and EAGAIN is returned bare for the caller to act on.
func readFD(fd uintptr, b []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), b)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, err
		case err != nil:
			return 0, os.NewSyscallError("read", err)
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}
