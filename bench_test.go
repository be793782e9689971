package connet_test

import (
	"context"
	"io"
	"testing"

	"github.com/p2pconnet/connet"
)

// BenchmarkTunnelThroughput moves bulk data from a source to a destination
// over loopback, both clients in this process; b.SetBytes makes go test
// report MB/s.
func BenchmarkTunnelThroughput(b *testing.B) {
	h := newHarness(b)
	ctx := context.Background()
	dc := h.connect("token-d")
	sc := h.connect("token-s")
	dst, err := dc.Destination(ctx, connet.NewDestinationConfig("sink"))
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			conn, err := dst.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.Copy(io.Discard, conn)
			}()
		}
	}()
	src, err := sc.Source(ctx, connet.NewSourceConfig("sink"))
	if err != nil {
		b.Fatal(err)
	}
	conn := dialEventually(b, src)
	defer conn.Close()
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := conn.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}
