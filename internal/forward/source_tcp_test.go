package forward_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"syscall"
	"testing"

	"github.com/p2pconnet/connet/internal/forward"
	"github.com/p2pconnet/connet/internal/testprog"
)

// TestSourceTCPStopResetsItsConnections: when Serve returns, the
// connections it tunnelled have been reset, not ended cleanly (a cut
// transfer must not pass for a complete one), and the splices that carried
// them are gone (TestMain checks that no goroutine is left).
func TestSourceTCPStopResetsItsConnections(t *testing.T) {
	ft := &fakeTunnel{target: testprog.ServeTCPEcho(t)}
	src, err := forward.NewSource(settings(t, "tcp://127.0.0.1:0"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() {
		served <- src.Serve(ctx, func(ctx context.Context, origin netip.AddrPort, _ net.Conn) (net.Conn, error) {
			return ft.dial(ctx, origin)
		})
	}()

	conn, err := net.Dial("tcp", src.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// An echo proves the splice is carrying the connection.
	if _, err := io.WriteString(conn, "hello\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || line != "hello\n" {
		t.Fatalf("echo: %q, %v", line, err)
	}

	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if n, err := conn.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after Serve returned, the client read %d bytes, %v; want a reset", n, err)
	}
}
