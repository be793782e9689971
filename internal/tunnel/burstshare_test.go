package tunnel_test

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/tunnel"
)

// sharedEnd is one end of a splice whose bursts draw on a share of free
// big buffers, as a relay's clients' streams do.
type sharedEnd struct {
	tunnel.HalfCloser
	free        atomic.Int64
	asked, held atomic.Int64
}

func (s *sharedEnd) TakeBurst() bool {
	s.asked.Add(1)
	if s.free.Add(-1) < 0 {
		s.free.Add(1)
		return false
	}
	s.held.Add(1)
	return true
}

func (s *sharedEnd) PutBurst() {
	s.held.Add(-1)
	s.free.Add(1)
}

// TestSpliceDrawsBurstsFromTheShare: a direction whose source shares its
// big buffers copies through one only when the share has one free, gives
// it back, and otherwise copies every byte through its small buffer.
func TestSpliceDrawsBurstsFromTheShare(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	for _, free := range []int64{0, 1} {
		pipeEnd, far := net.Pipe()
		other, service := tcpPair(t)
		src := &sharedEnd{HalfCloser: tunnel.TCP(pipeEnd)}
		src.free.Store(free)
		done := make(chan struct{})
		go func() {
			defer close(done)
			tunnel.Splice(src, tunnel.TCP(other))
		}()
		go func() {
			_, _ = far.Write(data)
			_ = far.Close()
		}()
		// The other direction carries nothing, and no other test runs
		// meanwhile: every big buffer held is this direction's.
		_ = service.SetReadDeadline(time.Now().Add(testTimeout))
		var got []byte
		chunk := make([]byte, 64<<10)
		for {
			n, err := service.Read(chunk)
			got = append(got, chunk[:n]...)
			if held := tunnel.BigBuffersHeld(); held > free {
				t.Fatalf("%d free: the splice holds %d big buffers", free, held)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%d free: received %d of %d bytes", free, len(got), len(data))
		}
		_ = service.Close()
		<-done
		if src.asked.Load() == 0 {
			t.Fatalf("%d free: the splice never asked the share for a big buffer", free)
		}
		if src.held.Load() != 0 || src.free.Load() != free {
			t.Fatalf("%d free: %d big buffers still held, %d free", free, src.held.Load(), src.free.Load())
		}
	}
}
