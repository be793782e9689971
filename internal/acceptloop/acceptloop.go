// Package acceptloop runs the accept loop of a TCP listener so that a
// passing failure never ends it. Running out of file descriptors (EMFILE,
// ENFILE) or of kernel memory (ENOBUFS, ENOMEM), or a connection aborted
// before it was taken, says nothing about the listener: the next accept
// may succeed. Only a closed listener ends the loop.
package acceptloop

import (
	"errors"
	"net"
	"time"
)

// The wait after a failed accept doubles from RetryMin to RetryMax while
// the failures go on (the bounds net/http uses), and starts over after a
// success: soon enough that the listener serves again within a second of
// descriptors being freed, rarely enough not to spin while they are not.
const (
	RetryMin = 5 * time.Millisecond
	RetryMax = time.Second
)

// Run accepts connections on ln and hands each to handle, until ln is
// closed or stop is. Every other accept error is retried after a wait;
// failed, if set, is told of each with that wait.
//
// Every error is retried, not only those net.Error once called temporary
// (that list leaves out ENOBUFS, ENOMEM and EPERM from a firewall hook,
// all of which pass): on an open listening socket no accept error is
// permanent, and a closed one reports net.ErrClosed.
func Run(ln net.Listener, stop <-chan struct{}, handle func(net.Conn), failed func(err error, wait time.Duration)) {
	var wait time.Duration
	for {
		conn, err := ln.Accept()
		if err == nil {
			wait = 0
			handle(conn)
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
		wait = min(max(2*wait, RetryMin), RetryMax)
		if failed != nil {
			failed(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
			return
		}
	}
}
