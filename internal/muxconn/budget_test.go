package muxconn_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/muxconn"
)

// TestUnadmittedClientHoldsHandshakeStreams: before the server admits a
// client, the client's streams keep yamux's initial window however fast
// the server reads, and a third stream ends the connection (yamux cannot
// refuse a stream otherwise): the server holds 512 KiB for it at most.
func TestUnadmittedClientHoldsHandshakeStreams(t *testing.T) {
	server, client := ids(t)
	ln := listen(t, server, nil, nil)
	cc, sc := pair(t, ln, server, client)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	data := bytes.Repeat([]byte("handshake "), 400_000) // 4 MB, many windows
	for range 2 {
		cs, err := cc.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			_, _ = cs.Write(data)
			_ = cs.CloseWrite()
		}()
		ss, err := sc.AcceptStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = ss.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(ss)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("server read %d of %d bytes: %v", len(got), len(data), err)
		}
	}
	if held := muxconn.WindowsHeld(sc); held != 2*muxconn.StreamWindow {
		t.Fatalf("the windows of two streams hold %d bytes before admission, want %d", held, 2*muxconn.StreamWindow)
	}

	cs, err := cc.OpenStream(ctx)
	if err == nil {
		_, _ = cs.Write([]byte("one too many"))
	}
	for _, c := range []muxconn.Conn{cc, sc} {
		select {
		case <-c.Context().Done():
		case <-ctx.Done():
			t.Fatal("a third stream before admission did not end the connection")
		}
	}
}

// TestAdmittedClientStreamsWithinBudget: once admitted, a client may open
// streams beyond the handshake's; HasWindowRoom tells the server when
// their windows fill the budget, and a stream it ends gives its window
// back. The connection goes on throughout.
func TestAdmittedClientStreamsWithinBudget(t *testing.T) {
	server, client := ids(t)
	ln := listen(t, server, nil, nil)
	cc, sc := pair(t, ln, server, client)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	muxconn.Admit(sc, 4*muxconn.StreamWindow)

	open := func() (cs, ss muxconn.Stream) {
		t.Helper()
		cs, err := cc.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		ss, err = sc.AcceptStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return cs, ss
	}
	var clientEnds []muxconn.Stream
	for i := range 4 {
		cs, _ := open()
		clientEnds = append(clientEnds, cs)
		if !muxconn.HasWindowRoom(sc, 0) {
			t.Fatalf("no room for stream %d of 4 in a budget of 4", i+1)
		}
	}
	if muxconn.HasWindowRoom(sc, muxconn.StreamWindow) {
		t.Fatal("room for a fifth stream's window in a budget of 4")
	}
	_, extra := open()
	if muxconn.HasWindowRoom(sc, 0) {
		t.Fatal("five streams fit a budget of four")
	}
	extra.Reset()
	if !muxconn.HasWindowRoom(sc, 0) {
		t.Fatal("a stream ended kept its window")
	}
	for i, cs := range clientEnds {
		if _, err := cs.Write([]byte("still here")); err != nil {
			t.Fatalf("stream %d after the budget filled: %v", i+1, err)
		}
	}
	if err := context.Cause(cc.Context()); err != nil {
		t.Fatalf("the connection ended: %v", err)
	}
}

// TestStreamsNotTakenYetAreBounded: streams the server has not taken yet
// hold windows its checks have not seen; a client that opens them faster
// than the server takes them (here the server takes none) gets the
// streams past the accept backlog reset, so their windows go at most 64
// streams past the budget.
func TestStreamsNotTakenYetAreBounded(t *testing.T) {
	server, client := ids(t)
	ln := listen(t, server, nil, nil)
	cc, sc := pair(t, ln, server, client)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	muxconn.Admit(sc, 4*muxconn.StreamWindow)
	const streams = 300
	for range streams {
		cs, err := cc.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = cs.Write([]byte{1})
	}
	// The server's session has seen every stream's opening once a round
	// trip on the connection is done.
	rt, err := cc.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = rt.Write([]byte{1})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && muxconn.WindowsHeld(sc) < 4*muxconn.StreamWindow {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	// One stream may wait in the connection's own hand-off beside yamux's
	// backlog of 64.
	if held, most := muxconn.WindowsHeld(sc), int64(64+1)*muxconn.StreamWindow; held > most {
		t.Fatalf("%d streams not taken hold %d KiB of windows, want at most %d KiB", streams, held>>10, most>>10)
	}
	if err := context.Cause(cc.Context()); err != nil {
		t.Fatalf("the connection ended: %v", err)
	}
}

// TestTinyFramesEndTheSession: a client that sends a stream its data one
// byte per frame while the server does not read it ends its session once
// it has more than 65 536 frames unread, the most any of connet's clients
// would leave (yamux keeps each frame apart: 6.7 MiB for one 256 KiB
// window filled so). Frames of the size connet's clients send, read or
// not, end nothing.
func TestTinyFramesEndTheSession(t *testing.T) {
	server, client := ids(t)
	ln := listen(t, server, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	cc, sc := pair(t, ln, server, client)
	big, err := cc.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := big.Write(make([]byte, 200<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.AcceptStream(ctx); err != nil {
		t.Fatal(err)
	}
	tiny, err := cc.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.AcceptStream(ctx); err != nil {
		t.Fatal(err)
	}
	one := []byte{1}
	for i := range 1 << 17 {
		if _, err := tiny.Write(one); err != nil {
			break // the server ended the session
		}
		if i == 1<<16-1 && sc.Context().Err() != nil {
			t.Fatalf("the session ended at %d frames: %v", i+1, context.Cause(sc.Context()))
		}
	}
	select {
	case <-sc.Context().Done():
	case <-ctx.Done():
		t.Fatal("a client left 131 072 one-byte frames unread and its session goes on")
	}
	if err := context.Cause(sc.Context()); !strings.Contains(err.Error(), "too many small frames") {
		t.Fatalf("the session ended with %v, want too many small frames", err)
	}
}
