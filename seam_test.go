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

// osNetwork is the operating system's network, for test networks to
// embed and change a method of: a connet.Network has the methods of
// net.ListenConfig and net.Dialer.
type osNetwork struct {
	net.ListenConfig
	net.Dialer
}

var _ connet.Network = (*osNetwork)(nil)

// countingListener is a connet.Network that opens real sockets, its UDP
// ones wrapped in plainConn, and counts how often it was asked for those.
type countingListener struct {
	osNetwork
	opened atomic.Int32
}

func (l *countingListener) ListenPacket(ctx context.Context, network, addr string) (net.PacketConn, error) {
	pc, err := l.osNetwork.ListenPacket(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	l.opened.Add(1)
	return plainConn{pc}, nil
}

// TestClientNetwork: a client's one socket comes from the ClientNetwork
// seam, and everything (control connection and a
// direct tunnel) works over a PacketConn that is not a *net.UDPConn.
func TestClientNetwork(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	ld, ls := &countingListener{}, &countingListener{}
	dc := h.connect("token-d", connet.ClientNetwork(ld))
	sc := h.connect("token-s", connet.ClientNetwork(ls))
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

func TestClientNetworkNil(t *testing.T) {
	_, err := connet.Connect(context.Background(), connet.ClientToken("x"), connet.ClientNetwork(nil))
	if err == nil {
		t.Fatal("a nil network was accepted")
	}
}
