package tunnel_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/tunnel"
)

// BenchmarkSpliceTCP moves bulk data client → Splice → sink over loopback
// TCP, so the cost measured is Splice's own (buffers, syscalls per byte).
func BenchmarkSpliceTCP(b *testing.B) {
	client, sink, _ := tcpSplice(b)
	drained := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, sink)
		drained <- n
	}()
	benchWrite(b, client)
	_ = client.(*net.TCPConn).CloseWrite()
	if n := <-drained; n != int64(b.N)<<20 {
		b.Fatalf("sink read %d bytes, want %d", n, int64(b.N)<<20)
	}
}

// BenchmarkSpliceQUIC moves bulk data from a QUIC stream through Splice to
// a TCP socket, as a destination forwards to its service. Its allocations
// are quic-go's (packets, frames), not Splice's: see BenchmarkSpliceTCP and
// TestSpliceSteadyStateAllocs.
func BenchmarkSpliceQUIC(b *testing.B) {
	s, app, done := splicePair(b)
	_ = app.SetDeadline(time.Time{})
	drained := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, app)
		drained <- n
	}()
	benchWrite(b, s)
	_ = s.CloseWrite()
	if n := <-drained; n != int64(b.N)<<20 {
		b.Fatalf("app read %d bytes, want %d", n, int64(b.N)<<20)
	}
	_ = app.CloseWrite()
	<-done
}

func benchWrite(b *testing.B, w io.Writer) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (dialed, accepted net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	accepted, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dialed.Close(); _ = accepted.Close() })
	return dialed, accepted
}

// tcpSplice runs Splice between two loopback TCP connections and returns
// their far ends (client → Splice → service) and a channel closed once
// Splice has returned.
func tcpSplice(t testing.TB) (client, service net.Conn, done <-chan struct{}) {
	t.Helper()
	client, left := tcpPair(t)
	right, service := tcpPair(t)
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		tunnel.Splice(tunnel.TCP(left), tunnel.TCP(right))
	}()
	return client, service, ch
}
