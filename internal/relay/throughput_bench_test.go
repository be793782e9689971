package relay

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// BenchmarkRelayedThroughput relays one connection between a source and a
// destination over each transport, the destination reading as fast as it
// can: the windows the relay allows a client must let a single stream run
// at full speed.
func BenchmarkRelayedThroughput(b *testing.B) {
	for _, transport := range []string{"quic", "tcp"} {
		b.Run(transport, func(b *testing.B) {
			r := startRelayAt(b, Ingress{Ingress: ingress.Ingress{Addr: "127.0.0.1:0", TCP: true}})
			src, dst := dialMux(b, r, transport), dialMux(b, r, transport)
			now := time.Now()
			if err := src.present(r.grantFor(src.id, now, ep("bench", pb.Role_ROLE_SOURCE, pb.Route_ROUTE_ANY))); err != nil {
				b.Fatal(err)
			}
			if err := dst.present(r.grantFor(dst.id, now, ep("bench", pb.Role_ROLE_DESTINATION, pb.Route_ROUTE_ANY))); err != nil {
				b.Fatal(err)
			}
			out, err := src.connect(dst.id.ID)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			in, err := dst.conn.AcceptStream(ctx)
			if err != nil {
				b.Fatal(err)
			}
			var hello pb.RelayIncoming
			if err := wire.Read(in, &hello, wire.MaxStreamHeader); err != nil {
				b.Fatal(err)
			}
			drained := make(chan error, 1)
			go func() {
				_, err := io.Copy(io.Discard, in)
				drained <- err
			}()
			buf := make([]byte, 1<<20)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for range b.N {
				if _, err := out.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			_ = out.CloseWrite()
			if err := <-drained; err != nil {
				b.Fatal(err)
			}
		})
	}
}
