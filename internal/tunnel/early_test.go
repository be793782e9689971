package tunnel_test

import (
	"bytes"
	"context"
	"errors"
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

// earlyPair is a path between two peers and a client connection (client
// is the source's end, far the client's) for Early to read from.
type earlyPair struct {
	src, dst    *path.QUIC
	client, far net.Conn
	early       *tunnel.Early
}

func newEarlyPair(t *testing.T) *earlyPair {
	t.Helper()
	src, dst := pathPair(t)
	client, far := net.Pipe()
	t.Cleanup(func() { _ = client.Close(); _ = far.Close() })
	return &earlyPair{src: src, dst: dst, client: client, far: far, early: &tunnel.Early{From: client}}
}

// open runs Open with the pair's Early and returns the request the
// destination read.
func (p *earlyPair) open(ctx context.Context, t *testing.T) (<-chan opened, *tunnel.Incoming) {
	t.Helper()
	ch := openEarly(ctx, p.src, p.early)
	in, err := tunnel.ReadRequest(accept(ctx, t, p.dst))
	if err != nil {
		t.Fatal(err)
	}
	return ch, in
}

// accepted accepts in and returns the stream Open returned.
func accepted(t *testing.T, in *tunnel.Incoming, ch <-chan opened) path.Stream {
	t.Helper()
	if err := in.Accept(); err != nil {
		t.Fatal(err)
	}
	s, err := result(t, ch)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Reset)
	return s
}

// clientReads checks that what far sends now reaches client: Open has
// left it alone.
func (p *earlyPair) clientReads(t *testing.T, msg string) {
	t.Helper()
	go func() { _, _ = p.far.Write([]byte(msg)) }()
	_ = p.client.SetReadDeadline(time.Now().Add(testTimeout))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(p.client, got); err != nil || string(got) != msg {
		t.Fatalf("client read %q, %v after Open; want %q", got, err, msg)
	}
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
// request is on its way reaches the destination before it answers, in
// order, and the client is left alone once Open returns.
func TestEarlyBytesTravelBeforeTheAnswer(t *testing.T) {
	p := newEarlyPair(t)
	ch, in := p.open(testContext(t), t)
	for _, msg := range []string{"GET / HTTP/1.1\r\n", "Host: x\r\n\r\n"} {
		go func() { _, _ = p.far.Write([]byte(msg)) }()
		if got := readN(t, in.Stream, len(msg)); string(got) != msg {
			t.Fatalf("destination read %q behind the request, want %q", got, msg)
		}
	}
	accepted(t, in, ch)
	if want := len("GET / HTTP/1.1\r\nHost: x\r\n\r\n"); p.early.Sent != want {
		t.Fatalf("counted %d bytes sent early, want %d", p.early.Sent, want)
	}
	p.clientReads(t, "after")
}

// TestEarlyBytesPinTheConnection: after a refusal a connection may go to
// another destination only if nothing went early; once bytes went (taken
// from the client, maybe passed to a service) it may not, whatever the
// failure.
func TestEarlyBytesPinTheConnection(t *testing.T) {
	p := newEarlyPair(t)
	ctx := testContext(t)
	refuse := func(in *tunnel.Incoming, ch <-chan opened) error {
		t.Helper()
		in.Refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_DESTINATION_DIAL_FAILED, "service down"))
		s, err := result(t, ch)
		if s != nil || !tunnel.IsRefusal(err) {
			t.Fatalf("Open: %v, %v; want the refusal", s, err)
		}
		return err
	}
	ch, in := p.open(ctx, t)
	if err := refuse(in, ch); !p.early.MayRetry(err) {
		t.Fatal("a refusal before anything went early forbids a retry")
	}
	ch, in = p.open(ctx, t)
	go func() { _, _ = p.far.Write([]byte("request")) }()
	readN(t, in.Stream, len("request"))
	if err := refuse(in, ch); p.early.MayRetry(err) {
		t.Fatal("a retry allowed after bytes went early")
	}
	var nothing *tunnel.Early
	if !nothing.MayRetry(errors.New("path failed")) {
		t.Fatal("a connection without Early may not be retried")
	}
}

// TestEarlyNothingToSend: a client that waits for its server (SSH, SMTP)
// sends nothing; the stream opens on the answer alone and the client loses
// nothing.
func TestEarlyNothingToSend(t *testing.T) {
	p := newEarlyPair(t)
	ch, in := p.open(testContext(t), t)
	accepted(t, in, ch)
	if p.early.Sent != 0 {
		t.Fatalf("sent %d bytes early, want none", p.early.Sent)
	}
	p.clientReads(t, "x")
}

// TestEarlyStopsAtItsBound: no more than EarlyMax bytes go before the
// answer; the rest stays with the client.
func TestEarlyStopsAtItsBound(t *testing.T) {
	p := newEarlyPair(t)
	ch, in := p.open(testContext(t), t)
	big := bytes.Repeat([]byte("z"), tunnel.EarlyMax)
	wrote := make(chan error, 1)
	go func() { _, err := p.far.Write(big); wrote <- err }()
	readN(t, in.Stream, tunnel.EarlyMax)
	accepted(t, in, ch)
	if p.early.Sent != tunnel.EarlyMax {
		t.Fatalf("sent %d bytes early, want %d", p.early.Sent, tunnel.EarlyMax)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	p.clientReads(t, "the rest")
}
