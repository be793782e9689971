package connet_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/testprog"
)

// closedLine waits for the "connection closed" debug line in a JSON log and
// returns it parsed.
func closedLine(t *testing.T, name string, out *testprog.LockedBuffer) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, l := range strings.Split(out.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == "connection closed" {
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s logged no connection closed within 10 s:\n%s", name, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConnectionResetLogged: a destination that abandons a connection
// after reading part of it logs "reset"; the source sees "reset by peer",
// and each counts the bytes that went its way.
func TestConnectionResetLogged(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	jsonLogger := func(out *testprog.LockedBuffer) connet.ClientOption {
		return connet.ClientLogger(slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
	dlog, srcLog := &testprog.LockedBuffer{}, &testprog.LockedBuffer{}
	dc, sc := h.connect("token-d", jsonLogger(dlog)), h.connect("token-s", jsonLogger(srcLog))
	dst, err := dc.Destination(ctx, connet.NewDestinationConfig("web"))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		conn, err := dst.Accept()
		if err != nil {
			return
		}
		_, _ = io.ReadFull(conn, make([]byte, 5))
		conn.(interface{ Reset() }).Reset()
		_ = conn.Close()
	}()
	src, err := sc.Source(ctx, connet.NewSourceConfig("web"))
	if err != nil {
		t.Fatal(err)
	}
	conn := dialEventually(t, src)
	defer conn.Close()
	if _, err := conn.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || err == io.EOF {
		t.Fatalf("read after the destination's reset: %v, want an error", err)
	}
	_ = conn.Close()

	d, s := closedLine(t, "destination", dlog), closedLine(t, "source", srcLog)
	if d["end"] != "reset" || d["bytes_received"] != 5.0 || d["bytes_sent"] != 0.0 {
		t.Errorf("destination: %v; want end reset with 5 bytes received", d)
	}
	if s["end"] != "reset by peer" || s["bytes_sent"] != 5.0 || s["bytes_received"] != 0.0 {
		t.Errorf("source: %v; want end reset by peer with 5 bytes sent", s)
	}
}
