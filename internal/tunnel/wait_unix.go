//go:build unix

package tunnel

import (
	"io"
	"net"
	"os"
	"syscall"
)

// readWaiter returns a way to wait until src has something to read (data,
// an end or an error) holding no buffer meanwhile; nil when src is not a
// bare TCP socket. A wrapper such as *tls.Conn may hold data its socket no
// longer shows, so only the socket itself qualifies.
func readWaiter(src io.Reader) *waiter {
	tc, ok := src.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	// Peeking one byte without blocking tells whether a read would block;
	// RawConn.Read waits in the poller for as long as it would. The
	// functions are made once per direction, so waiting allocates nothing.
	// A socket error (a reset) is reported once, to the peek that finds
	// it; it is kept, so the splice aborts rather than take the read
	// after it, which sees a clean end, for one.
	w := &waiter{}
	ready := func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), w.peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err != nil && err != syscall.EAGAIN && err != syscall.EINTR && w.err == nil {
			w.err = os.NewSyscallError("recvfrom", err)
		}
		w.readable = err != syscall.EAGAIN
		return w.readable
	}
	probe := func(fd uintptr) { ready(fd) }
	w.wait = func() error {
		if err := rc.Read(ready); err != nil {
			return err
		}
		return w.err
	}
	w.pending = func() bool { return rc.Control(probe) == nil && w.readable }
	return w
}
