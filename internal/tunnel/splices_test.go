package tunnel_test

import (
	"io"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/tunnel"
)

// TestSplicesStopResetsBothEnds: Stop cuts the running splices with a
// reset at both far ends (a client stopping mid-transfer must not pass a
// truncated stream off as complete) and returns once they are gone; a
// splice started after Stop is cut at once.
func TestSplicesStopResetsBothEnds(t *testing.T) {
	var g tunnel.Splices
	client, left := tcpPair(t)
	right, service := tcpPair(t)
	g.Go(tunnel.TCP(left), tunnel.TCP(right))
	if _, err := client.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("partial"))
	_ = service.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(service, buf); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		g.Stop()
	}()
	wantReset(t, client, "")
	wantReset(t, service, "")
	select {
	case <-stopped:
	case <-time.After(testTimeout):
		t.Fatal("Stop did not return")
	}

	late, left := tcpPair(t)
	right, lateService := tcpPair(t)
	g.Go(tunnel.TCP(left), tunnel.TCP(right))
	wantReset(t, late, "")
	wantReset(t, lateService, "")
}
