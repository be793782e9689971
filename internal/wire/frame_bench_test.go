package wire_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"google.golang.org/protobuf/proto"
)

// BenchmarkFrame writes and reads back one framed message per op: the
// stream request every tunnelled connection starts with, and the biggest
// control message of the samples. Framing is off the data path (a
// connection's bytes after its header never pass through it), so its
// allocations are reported, not held at zero.
func BenchmarkFrame(b *testing.B) {
	request := &pb.StreamRequest{Endpoint: "web", Origin: wire.FromAddrPort(netip.MustParseAddrPort("192.0.2.7:4242"))}
	var biggest proto.Message
	for _, m := range samples() {
		if biggest == nil || proto.Size(m) > proto.Size(biggest) {
			biggest = m
		}
	}
	for _, c := range []struct {
		name string
		msg  proto.Message
	}{{"stream_request", request}, {"control", biggest}} {
		b.Run(c.name, func(b *testing.B) {
			var buf bytes.Buffer
			var r bytes.Reader
			got := c.msg.ProtoReflect().New().Interface()
			b.SetBytes(int64(proto.Size(c.msg)))
			b.ReportAllocs()
			for range b.N {
				buf.Reset()
				if err := wire.Write(&buf, c.msg); err != nil {
					b.Fatal(err)
				}
				r.Reset(buf.Bytes())
				proto.Reset(got)
				if err := wire.Read(&r, got, wire.MaxControlMessage); err != nil {
					b.Fatal(err)
				}
			}
			if !proto.Equal(got, c.msg) {
				b.Fatalf("read back %v, want %v", got, c.msg)
			}
		})
	}
}
