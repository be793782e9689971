//go:build !race

// The race detector allocates on its own and makes sync.Pool drop buffers
// at random, so allocation counts are checked only without it
// (scripts/test.sh runs these with the benchmarks).

package tunnel_test

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestSpliceSteadyStateAllocs: once data flows, a splice between two TCP
// sockets copies without allocating: bursts reuse pooled buffers, and the
// small buffer is allocated once per direction, not per read.
func TestSpliceSteadyStateAllocs(t *testing.T) {
	client, sink, done := tcpSplice(t)
	// The writer is a long-lived goroutine so that each step costs only
	// channel operations besides the copy itself.
	chunk := make([]byte, 256<<10)
	writes, written := make(chan struct{}), make(chan error)
	go func() {
		for range writes {
			_, err := client.Write(chunk)
			written <- err
		}
	}()
	got := make([]byte, len(chunk))
	step := func() {
		writes <- struct{}{}
		_, rerr := io.ReadFull(sink, got)
		if err := <-written; err != nil || rerr != nil {
			t.Fatalf("write %v, read %v", err, rerr)
		}
	}
	allocs := testing.AllocsPerRun(100, step)
	close(writes)

	_ = client.(*net.TCPConn).CloseWrite()
	_ = sink.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.Copy(io.Discard, sink); n != 0 || err != nil {
		t.Fatalf("after the last write: %d more bytes, %v; want a clean end", n, err)
	}
	_ = sink.(*net.TCPConn).CloseWrite()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("splice did not end within 10s of both half-closes")
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per 256 KiB spliced, want 0", allocs)
	}
}
