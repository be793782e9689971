package connet_test

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"github.com/p2pconnet/connet"
)

// plainConn hides every method of the socket but net.PacketConn's, so
// quic-go cannot take its *net.UDPConn fast path: it must work over any
// PacketConn, as it does over a simulated network.
type plainConn struct{ net.PacketConn }

// countingListener is a connet.PacketListener that opens real sockets,
// wrapped in plainConn, and counts how often it was asked.
type countingListener struct{ opened atomic.Int32 }

func (l *countingListener) ListenPacket(ctx context.Context, network, addr string) (net.PacketConn, error) {
	pc, err := (&net.ListenConfig{}).ListenPacket(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	l.opened.Add(1)
	return plainConn{pc}, nil
}

// TestClientPacketListener: a client's one socket comes from the
// ClientPacketListener seam, and everything (control connection and a
// direct tunnel) works over a PacketConn that is not a *net.UDPConn.
func TestClientPacketListener(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	ld, ls := &countingListener{}, &countingListener{}
	dc := h.connect("token-d", connet.ClientPacketListener(ld))
	sc := h.connect("token-s", connet.ClientPacketListener(ls))
	if ld.opened.Load() != 1 || ls.opened.Load() != 1 {
		t.Fatalf("sockets opened through the seam: %d, %d; want 1 each", ld.opened.Load(), ls.opened.Load())
	}
	if _, ok := dc.DirectAddr().(*net.UDPAddr); !ok {
		t.Fatalf("DirectAddr %T", dc.DirectAddr())
	}
	dst, err := dc.Destination(ctx, connet.NewDestinationConfig("echo"))
	if err != nil {
		t.Fatal(err)
	}
	go echo(dst)
	src, err := sc.Source(ctx, connet.NewSourceConfig("echo"))
	if err != nil {
		t.Fatal(err)
	}
	conn := dialEventually(t, src)
	defer conn.Close()
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
}

func TestClientPacketListenerNil(t *testing.T) {
	_, err := connet.Connect(context.Background(), connet.ClientToken("x"), connet.ClientPacketListener(nil))
	if err == nil {
		t.Fatal("a nil packet listener was accepted")
	}
}
