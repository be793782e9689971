package testprog

import (
	"io"
	"net"
	"sync"
	"testing"
)

// ServeTCPEcho runs a TCP echo service on loopback until the test ends,
// and returns its address. Cleanup closes the listener and every
// connection still open, and waits for the service's goroutines, so leak
// checks see none of them.
func ServeTCPEcho(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					_ = c.Close()
				}()
				_, _ = io.Copy(c, c)
			})
		}
	})
	return ln.Addr().String()
}
