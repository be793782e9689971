package tunnel_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/testwait"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/quic-go/quic-go"
)

// wantReset reads c to its end and fails unless it ends in a TCP reset
// (after want, if anything arrives first).
func wantReset(t *testing.T, c net.Conn, want string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	got, err := io.ReadAll(c)
	if string(got) != want || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read %q, %v; want %q then a connection reset (not a clean end)", got, err, want)
	}
}

// brokenStream is a far side that delivers "partial", then fails with err
// once fail is closed, as a cut relay or a truncated e2ee stream does.
type brokenStream struct {
	sent  atomic.Bool
	fail  chan struct{}
	err   error
	reset atomic.Bool
}

func newBrokenStream(err error) *brokenStream {
	return &brokenStream{fail: make(chan struct{}), err: err}
}

func (b *brokenStream) Read(p []byte) (int, error) {
	if !b.sent.Swap(true) {
		return copy(p, "partial"), nil
	}
	<-b.fail
	return 0, b.err
}
func (b *brokenStream) Write(p []byte) (int, error) { return len(p), nil }
func (b *brokenStream) CloseWrite() error           { return nil }
func (b *brokenStream) Close() error                { return nil }
func (b *brokenStream) Reset()                      { b.reset.Store(true) }

// TestSpliceStreamResetIsTCPReset: a reset stream reaches the TCP side as a
// reset, not as a FIN that would make a partial transfer look complete.
func TestSpliceStreamResetIsTCPReset(t *testing.T) {
	s, app, done := splicePair(t)
	if _, err := s.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("partial"))
	if _, err := io.ReadFull(app, buf); err != nil {
		t.Fatal(err)
	}
	s.Reset()
	wantReset(t, app, "")
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("Splice did not return after a reset")
	}
}

// TestSpliceReadErrorIsTCPReset: a stream that fails (e2ee's truncation
// error, a path that died) is reset and its TCP side gets a reset, over
// plain TCP and under TLS, where closing the *tls.Conn would send a clean
// close_notify instead.
func TestSpliceReadErrorIsTCPReset(t *testing.T) {
	truncated := fmt.Errorf("e2ee: stream ended without end-of-stream record: %w", io.ErrUnexpectedEOF)
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			app, svc := tcpPair(t)
			if useTLS {
				app, svc = tlsPair(t, app, svc)
			}
			wantStreamFailureReset(t, truncated, app, svc)
		})
	}
}

// TestSpliceConnectionLossIsTCPReset: when the connection under a stream
// is lost (the peer closed it, it went silent and was closed here, its
// idle timeout passed, a stateless reset came), the TCP side gets a reset.
// QUIC reports each of these as an error matching net.ErrClosed, which is
// no clean end of data.
func TestSpliceConnectionLossIsTCPReset(t *testing.T) {
	for _, tc := range []struct {
		name string
		// lose ends the connection under the destination's stream.
		lose func(src, dst *netpath.QUIC)
	}{
		{"the peer closes its connection", func(src, _ *netpath.QUIC) { _ = src.Close() }},
		{"the connection is closed here", func(_, dst *netpath.QUIC) { _ = dst.Conn.CloseWithError(2, "peer gone") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := pathPair(t)
			s, app, done := spliceOn(t, src, dst)
			if _, err := s.Write([]byte("partial")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, len("partial"))
			if _, err := io.ReadFull(app, buf); err != nil {
				t.Fatal(err)
			}
			tc.lose(src, dst)
			wantReset(t, app, "")
			select {
			case <-done:
			case <-time.After(testTimeout):
				t.Fatal("Splice did not return after the connection was lost")
			}
		})
	}
	for _, lost := range []error{&quic.IdleTimeoutError{}, &quic.StatelessResetError{}, &quic.ApplicationError{Remote: true}} {
		t.Run(lost.Error(), func(t *testing.T) {
			app, svc := tcpPair(t)
			wantStreamFailureReset(t, lost, app, svc)
		})
	}
}

// wantStreamFailureReset splices a stream that delivers "partial" and then
// fails with err to svc, and checks that app, svc's far end, reads the
// partial data and then a reset, and that the stream was reset.
func wantStreamFailureReset(t *testing.T, err error, app, svc net.Conn) {
	t.Helper()
	bs := newBrokenStream(err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tunnel.Splice(bs, tunnel.TCP(svc))
	}()
	buf := make([]byte, len("partial"))
	_ = app.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(app, buf); err != nil {
		t.Fatal(err)
	}
	close(bs.fail)
	wantReset(t, app, "")
	<-done
	if !bs.reset.Load() {
		t.Fatal("the failed stream was not reset")
	}
}

// TestSpliceTCPResetBothWays: a client's reset reaches the service as a
// reset through a splice, and the other way round; a FIN stays a FIN.
func TestSpliceTCPResetBothWays(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reset bool
		// fromClient: the client ends, else the service.
		fromClient bool
	}{
		{"client resets", true, true},
		{"service resets", true, false},
		{"client ends", false, true},
		{"service ends", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, service, done := tcpSplice(t)
			ender, other := client.(*net.TCPConn), service.(*net.TCPConn)
			if !tc.fromClient {
				ender, other = other, ender
			}
			if _, err := ender.Write([]byte("partial")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, len("partial"))
			_ = other.SetReadDeadline(time.Now().Add(testTimeout))
			if _, err := io.ReadFull(other, buf); err != nil {
				t.Fatal(err)
			}
			if !tc.reset {
				// Half-close: the other side reads EOF and can still answer.
				_ = ender.CloseWrite()
				if got, err := io.ReadAll(other); err != nil || len(got) != 0 {
					t.Fatalf("after a FIN the other side read %q, %v; want a clean EOF", got, err)
				}
				if _, err := other.Write([]byte("answer")); err != nil {
					t.Fatal(err)
				}
				_ = other.CloseWrite()
				_ = ender.SetReadDeadline(time.Now().Add(testTimeout))
				if got, err := io.ReadAll(ender); err != nil || string(got) != "answer" {
					t.Fatalf("half-closed side read %q, %v; want answer then EOF", got, err)
				}
				<-done
				return
			}
			_ = ender.SetLinger(0)
			_ = ender.Close()
			wantReset(t, other, "")
			<-done
		})
	}
}

// tlsPair runs a TLS handshake over a TCP pair: client on dialed, server on
// accepted.
func tlsPair(t *testing.T, dialed, accepted net.Conn) (client, server net.Conn) {
	t.Helper()
	cert, err := testcert.New("localhost")
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(dialed, &tls.Config{ServerName: "localhost", RootCAs: cert.Pool})
	ts := tls.Server(accepted, &tls.Config{Certificates: []tls.Certificate{cert.TLS}})
	errc := make(chan error, 1)
	go func() { errc <- ts.Handshake() }()
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return tc, ts
}

// TestIdleSplicesHoldNoBigBuffers: once data stops, a splice gives its big
// buffers back, and what idle splices keep in the heap stays small, so that
// thousands of idle tunnelled connections are cheap.
func TestIdleSplicesHoldNoBigBuffers(t *testing.T) {
	const n = 500
	const maxPerSplice = 16 << 10
	burst := make([]byte, 256<<10)
	before := heapInuse()
	ends := make([][2]net.Conn, n)
	for i := range ends {
		client, service, _ := tcpSplice(t)
		ends[i] = [2]net.Conn{client, service}
	}
	// A burst each way makes every direction take a big buffer.
	for _, e := range ends {
		for _, dir := range [][2]net.Conn{{e[0], e[1]}, {e[1], e[0]}} {
			go func() { _, _ = dir[0].Write(burst) }()
			_ = dir[1].SetReadDeadline(time.Now().Add(testTimeout))
			if _, err := io.ReadFull(dir[1], make([]byte, len(burst))); err != nil {
				t.Fatal(err)
			}
		}
	}
	testwait.For(t, testTimeout, func() bool { return tunnel.BigBuffersHeld() == 0 }, "the big buffers of %d idle splices to be released", n)
	idle := heapInuse()
	perSplice := (int64(idle) - int64(before)) / n
	t.Logf("heap in use per idle splice (four sockets, two directions): %d bytes; each direction waits with %d", perSplice, tunnel.SmallSize)
	if perSplice > maxPerSplice {
		t.Fatalf("an idle splice keeps %d bytes of heap, want at most %d", perSplice, maxPerSplice)
	}
	runtime.KeepAlive(ends)
}

// heapInuse is the heap in use once garbage, and sync.Pool contents (which
// survive one collection), are gone.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestIdleTCPDirectionsHoldNoBuffer: a direction that reads a TCP socket
// waits for data holding no buffer at all, and borrows one only while a
// message passes; a direction reading anything else (here one end of
// net.Pipe) keeps its small buffer while it waits.
func TestIdleTCPDirectionsHoldNoBuffer(t *testing.T) {
	client, service, done := tcpSplice(t)
	msg := []byte("hello")
	for _, dir := range [][2]net.Conn{{client, service}, {service, client}} {
		if _, err := dir[0].Write(msg); err != nil {
			t.Fatal(err)
		}
		_ = dir[1].SetReadDeadline(time.Now().Add(testTimeout))
		if _, err := io.ReadFull(dir[1], make([]byte, len(msg))); err != nil {
			t.Fatal(err)
		}
	}
	waitHeld(t, 0)

	pipeEnd, far := net.Pipe()
	other, service2 := tcpPair(t)
	go tunnel.Splice(tunnel.TCP(pipeEnd), tunnel.TCP(other))
	// The pipe's direction waits with its own small buffer, the socket's
	// with none.
	waitHeld(t, 1)
	_ = far.Close()
	_ = service2.Close()
	_ = client.Close()
	_ = service.Close()
	<-done
}

// waitHeld waits until splices hold n small buffers, failing the test after
// testTimeout.
func waitHeld(t *testing.T, n int64) {
	t.Helper()
	testwait.For(t, testTimeout, func() bool { return tunnel.SmallBuffersHeld() == n }, "splices to hold %d small buffers", n)
}

// TestSpliceCarriesEveryByte sends data shaped to cross every boundary of
// a TCP direction's reads (one byte, exactly the small buffer, one more,
// bursts bigger than the big buffer, pauses that drain the socket) both
// ways at once through a splice of two TCP pairs, and checks that each
// side receives exactly what the other sent, in order.
func TestSpliceCarriesEveryByte(t *testing.T) {
	client, service, _ := tcpSplice(t)

	sizes := []int{1, 511, 512, 513, 1024, 64 << 10, 64<<10 + 512, 200 << 10, 3, 512}
	payload := func(seed byte) []byte {
		var b []byte
		for i, n := range sizes {
			for j := range n {
				b = append(b, seed+byte(i)+byte(j*7))
			}
		}
		return b
	}
	send := func(c net.Conn, seed byte, errs chan<- error) {
		data := payload(seed)
		for _, n := range sizes {
			if _, err := c.Write(data[:n]); err != nil {
				errs <- err
				return
			}
			data = data[n:]
			time.Sleep(time.Millisecond) // let the far direction drain
		}
		errs <- c.(*net.TCPConn).CloseWrite()
	}
	errs := make(chan error, 2)
	go send(client, 1, errs)
	go send(service, 101, errs)
	for _, end := range []struct {
		c    net.Conn
		seed byte
	}{{service, 1}, {client, 101}} {
		_ = end.c.SetReadDeadline(time.Now().Add(testTimeout))
		got, err := io.ReadAll(end.c)
		if err != nil {
			t.Fatal(err)
		}
		if want := payload(end.seed); !bytes.Equal(got, want) {
			t.Fatalf("received %d bytes, want %d, first difference at %d", len(got), len(want), firstDiff(got, want))
		}
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
