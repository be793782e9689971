package tunnel_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// openEarly runs Open with early in the background.
func openEarly(ctx context.Context, p netpath.Path, early *tunnel.Early) <-chan opened {
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
	src, dst    *netpath.QUIC
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
func accepted(t *testing.T, in *tunnel.Incoming, ch <-chan opened) netpath.Stream {
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
func readN(t *testing.T, s netpath.Stream, n int) []byte {
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

// writeCounter counts the writes made on a stream.
type writeCounter struct {
	netpath.Stream
	writes int
}

func (w *writeCounter) Write(b []byte) (int, error) {
	w.writes++
	return w.Stream.Write(b)
}

// waitQueued waits until c has something to read (data, an end or a
// reset), without reading it: select(2) leaves a queued reset for the
// next read, where a peeking read would take it.
func waitQueued(t *testing.T, c net.Conn) {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	cerr := rc.Control(func(fd uintptr) {
		var set syscall.FdSet
		set.Bits[fd/64] |= 1 << (fd % 64)
		tv := syscall.NsecToTimeval(int64(testTimeout))
		n, err = syscall.Select(int(fd)+1, &set, nil, nil, &tv)
	})
	if cerr != nil || err != nil || n != 1 {
		t.Fatalf("nothing queued within %v: %v, %v", testTimeout, cerr, err)
	}
}

// TestEarlyQueuedBytesRideWithTheRequest: what a TCP client has sent by
// the time the request goes out travels in the request's own write (one
// packet, not two), and counts as sent early; the client is left alone
// afterwards.
func TestEarlyQueuedBytesRideWithTheRequest(t *testing.T) {
	ctx := testContext(t)
	src, dst := pathPair(t)
	client, far := tcpPair(t)
	const msg = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := far.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	waitQueued(t, client)
	s, err := src.OpenStream(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Reset)
	counted := &writeCounter{Stream: s}
	early := &tunnel.Early{From: client}
	asked := make(chan error, 1)
	go func() { asked <- tunnel.Ask(ctx, counted, tunnel.Request{Endpoint: "web"}, early) }()
	in, err := tunnel.ReadRequest(accept(ctx, t, dst))
	if err != nil {
		t.Fatal(err)
	}
	if got := readN(t, in.Stream, len(msg)); string(got) != msg {
		t.Fatalf("destination read %q behind the request, want %q", got, msg)
	}
	if err := in.Accept(); err != nil {
		t.Fatal(err)
	}
	if err := <-asked; err != nil {
		t.Fatalf("Ask: %v", err)
	}
	if counted.writes != 1 || early.Sent != len(msg) {
		t.Fatalf("request and queued bytes took %d writes with %d bytes counted early; want 1 write, %d bytes",
			counted.writes, early.Sent, len(msg))
	}
	p := &earlyPair{client: client, far: far}
	p.clientReads(t, "after")
}

// TestEarlyClientResetBeforeTheRequest: a client whose reset is queued by
// the time the request goes out (the socket reports it once, then an end)
// fails the open as ErrClientFailed, not as a clean end.
func TestEarlyClientResetBeforeTheRequest(t *testing.T) {
	ctx := testContext(t)
	src, dst := pathPair(t)
	client, far := tcpPair(t)
	_ = far.(*net.TCPConn).SetLinger(0)
	_ = far.Close()
	waitQueued(t, client)
	early := &tunnel.Early{From: client}
	ch := openEarly(ctx, src, early)
	in, err := tunnel.ReadRequest(accept(ctx, t, dst))
	if err != nil {
		t.Fatal(err)
	}
	_ = in.Accept()
	if s, err := result(t, ch); s != nil || !errors.Is(err, tunnel.ErrClientFailed) || early.MayRetry(err) {
		t.Fatalf("Open: %v, %v; want ErrClientFailed, no retry", s, err)
	}
}
