package tunnel_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/path"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// openEarly runs Open with early in the background.
func openEarly(ctx context.Context, p path.Path, early *tunnel.Early) <-chan opened {
	ch := make(chan opened, 1)
	go func() {
		s, err := tunnel.Open(ctx, p, tunnel.Request{Endpoint: "web"}, early)
		ch <- opened{s, err}
	}()
	return ch
}

// readN reads exactly n bytes from s within the test's time.
func readN(t *testing.T, s path.Stream, n int) []byte {
	t.Helper()
	_ = s.SetDeadline(time.Now().Add(testTimeout))
	b := make([]byte, n)
	if _, err := io.ReadFull(s, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

// TestEarlyBytesTravelBeforeTheAnswer: what the client sends while the
// request is on its way reaches the destination before it answers, and a
// refusal keeps it for the next stream, which carries it again, so the
// destination that accepts sees the client's bytes once and in order.
func TestEarlyBytesTravelBeforeTheAnswer(t *testing.T) {
	src, dst := pathPair(t)
	ctx := testContext(t)
	client, far := net.Pipe()
	defer client.Close()
	defer far.Close()
	early := &tunnel.Early{From: client}

	// First destination: the client's first message arrives behind the
	// request, before any answer; then it refuses.
	ch := openEarly(ctx, src, early)
	in, err := tunnel.ReadRequest(accept(ctx, t, dst))
	if err != nil {
		t.Fatal(err)
	}
	first := []byte("GET / HTTP/1.1\r\n")
	go func() { _, _ = far.Write(first) }()
	if got := readN(t, in.Stream, len(first)); !bytes.Equal(got, first) {
		t.Fatalf("destination read %q behind the request, want %q", got, first)
	}
	in.Refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_DESTINATION_DIAL_FAILED, "service down"))
	if s, err := result(t, ch); s != nil || !tunnel.IsRefusal(err) {
		t.Fatalf("Open: %v, %v; want the refusal", s, err)
	}
	if !bytes.Equal(early.Sent, first) {
		t.Fatalf("kept %q for the next destination, want %q", early.Sent, first)
	}

	// Second destination: the kept bytes come first, then what the client
	// sends next; it accepts.
	ch = openEarly(ctx, src, early)
	in, err = tunnel.ReadRequest(accept(ctx, t, dst))
	if err != nil {
		t.Fatal(err)
	}
	if got := readN(t, in.Stream, len(first)); !bytes.Equal(got, first) {
		t.Fatalf("second destination read %q first, want the kept %q", got, first)
	}
	second := []byte("Host: x\r\n\r\n")
	go func() { _, _ = far.Write(second) }()
	if got := readN(t, in.Stream, len(second)); !bytes.Equal(got, second) {
		t.Fatalf("second destination read %q next, want %q", got, second)
	}
	if err := in.Accept(); err != nil {
		t.Fatal(err)
	}
	s, err := result(t, ch)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Reset()

	// Once Open has returned, the client is left alone: what it sends
	// now is for the splice, not lost to a reader cut short.
	third := []byte("after")
	go func() { _, _ = far.Write(third) }()
	_ = client.SetReadDeadline(time.Now().Add(testTimeout))
	got := make([]byte, len(third))
	if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, third) {
		t.Fatalf("client read %q, %v after Open; want %q", got, err, third)
	}
}

// TestEarlyNothingToSend: a client that waits for its server (SSH, SMTP)
// sends nothing; the stream opens on the answer alone and the client loses
// nothing.
func TestEarlyNothingToSend(t *testing.T) {
	src, dst := pathPair(t)
	ctx := testContext(t)
	client, far := net.Pipe()
	defer client.Close()
	defer far.Close()
	early := &tunnel.Early{From: client}
	ch := openEarly(ctx, src, early)
	in, err := tunnel.ReadRequest(accept(ctx, t, dst))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Accept(); err != nil {
		t.Fatal(err)
	}
	s, err := result(t, ch)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Reset()
	if len(early.Sent) != 0 {
		t.Fatalf("sent %q early, want nothing", early.Sent)
	}
	go func() { _, _ = far.Write([]byte("x")) }()
	_ = client.SetReadDeadline(time.Now().Add(testTimeout))
	var b [1]byte
	if _, err := client.Read(b[:]); err != nil || b[0] != 'x' {
		t.Fatalf("client read %q, %v after Open; want x", b[:], err)
	}
}

// TestEarlyStopsAtItsBound: no more than EarlyMax bytes go before the
// answer; the rest stays with the client.
func TestEarlyStopsAtItsBound(t *testing.T) {
	src, dst := pathPair(t)
	ctx := testContext(t)
	client, far := net.Pipe()
	defer client.Close()
	defer far.Close()
	early := &tunnel.Early{From: client}
	ch := openEarly(ctx, src, early)
	in, err := tunnel.ReadRequest(accept(ctx, t, dst))
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("z"), tunnel.EarlyMax+100)
	wrote := make(chan error, 1)
	go func() { _, err := far.Write(big); wrote <- err }()
	readN(t, in.Stream, tunnel.EarlyMax)
	if err := in.Accept(); err != nil {
		t.Fatal(err)
	}
	s, err := result(t, ch)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Reset()
	if len(early.Sent) != tunnel.EarlyMax {
		t.Fatalf("sent %d bytes early, want %d", len(early.Sent), tunnel.EarlyMax)
	}
	_ = client.SetReadDeadline(time.Now().Add(testTimeout))
	rest := make([]byte, 100)
	if _, err := io.ReadFull(client, rest); err != nil {
		t.Fatalf("the client's last 100 bytes: %v", err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}
