package tunnel_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
	"google.golang.org/protobuf/proto"
)

// testTimeout bounds every wait; a healthy run needs a fraction.
const testTimeout = 10 * time.Second

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func udp(t testing.TB) *quic.Transport {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: c}
	t.Cleanup(func() { _ = tr.Close(); _ = c.Close() })
	return tr
}

// pathPair connects two peers over loopback QUIC, as the direct package
// does: src dialed, dst accepted.
func pathPair(t testing.TB) (src, dst *netpath.QUIC) {
	t.Helper()
	ctx := testContext(t)
	srcID, err := identity.Generate("src")
	if err != nil {
		t.Fatal(err)
	}
	dstID, err := identity.Generate("dst")
	if err != nil {
		t.Fatal(err)
	}
	known := func(_ context.Context, id identity.ID) bool { return id == srcID.ID }
	ln, err := udp(t).Listen(dstID.PinnedServerConfig(wire.ALPNPeer, known, time.Second), tuning.QUIC(0))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := udp(t).Dial(ctx, ln.Addr(), srcID.PinnedClientConfig(dstID.DER(), wire.ALPNPeer), tuning.QUIC(0))
	if err != nil {
		t.Fatal(err)
	}
	accepted, err := ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var watching sync.WaitGroup
	src, dst = netpath.NewQUIC(conn, netpath.DirectOutgoing, &watching), netpath.NewQUIC(accepted, netpath.DirectIncoming, &watching)
	t.Cleanup(func() { _ = src.Close(); _ = dst.Close(); watching.Wait() })
	return src, dst
}

type opened struct {
	s   netpath.Stream
	err error
}

// openAsync runs Open in the background; the destination side answers in
// the test's goroutine.
func openAsync(ctx context.Context, p netpath.Path, req tunnel.Request) <-chan opened {
	ch := make(chan opened, 1)
	go func() {
		s, err := tunnel.Open(ctx, p, req, nil)
		ch <- opened{s, err}
	}()
	return ch
}

func result(t testing.TB, ch <-chan opened) (netpath.Stream, error) {
	t.Helper()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(testTimeout):
		t.Fatal("Open did not return")
		return nil, nil
	}
}

func accept(ctx context.Context, t testing.TB, p *netpath.QUIC) netpath.Stream {
	t.Helper()
	s, err := p.Accept(ctx)
	if err != nil {
		t.Fatalf("accept stream: %v", err)
	}
	_ = s.SetDeadline(time.Now().Add(testTimeout))
	return s
}

// readAll reads s to its end, within the test's time.
func readAll(t testing.TB, s interface {
	io.Reader
	SetDeadline(time.Time) error
}) ([]byte, error) {
	t.Helper()
	_ = s.SetDeadline(time.Now().Add(testTimeout))
	return io.ReadAll(s)
}

func TestOpenAccept(t *testing.T) {
	src, dst := pathPair(t)
	ctx := testContext(t)
	for _, origin := range []netip.AddrPort{
		netip.MustParseAddrPort("192.0.2.1:1234"),
		netip.MustParseAddrPort("[2001:db8::7]:443"),
		{},
	} {
		ch := openAsync(ctx, src, tunnel.Request{Endpoint: "web", Origin: origin})
		s := accept(ctx, t, dst)
		in, err := tunnel.ReadRequest(s)
		if err != nil {
			t.Fatalf("ReadRequest: %v", err)
		}
		if in.Endpoint != "web" || in.Origin != origin || in.Stream != s {
			t.Fatalf("request %+v, want endpoint web from %v on the accepted stream", in.Request, origin)
		}
		if err := in.Accept(); err != nil {
			t.Fatal(err)
		}
		ss, err := result(t, ch)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}

		// After the header both directions carry raw bytes, each ending on
		// its own.
		if _, err := ss.Write([]byte("request")); err != nil {
			t.Fatal(err)
		}
		_ = ss.CloseWrite()
		if got, err := readAll(t, s); err != nil || string(got) != "request" {
			t.Fatalf("destination read %q, %v", got, err)
		}
		if _, err := s.Write([]byte("response")); err != nil {
			t.Fatal(err)
		}
		_ = s.CloseWrite()
		if got, err := readAll(t, ss); err != nil || string(got) != "response" {
			t.Fatalf("source read %q, %v", got, err)
		}
		_ = ss.Close()
		_ = s.Close()
	}
}

func TestRefusal(t *testing.T) {
	src, dst := pathPair(t)
	ctx := testContext(t)
	ch := openAsync(ctx, src, tunnel.Request{Endpoint: "web"})
	in, err := tunnel.ReadRequest(accept(ctx, t, dst))
	if err != nil {
		t.Fatal(err)
	}
	in.Refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_DESTINATION_NOT_FOUND, "no %s here", in.Endpoint))
	s, err := result(t, ch)
	if s != nil || !tunnel.IsRefusal(err) {
		t.Fatalf("Open of a refused request: %v, %v; want a refusal", s, err)
	}
	var werr *wire.Error
	if !errors.As(err, &werr) || werr.Code != pb.ErrorCode_ERROR_CODE_DESTINATION_NOT_FOUND || werr.Message != "no web here" {
		t.Fatalf("refusal %#v, want DESTINATION_NOT_FOUND %q", err, "no web here")
	}
	if !errors.Is(err, &wire.Error{Code: pb.ErrorCode_ERROR_CODE_DESTINATION_NOT_FOUND}) {
		t.Fatalf("errors.Is does not match the refusal's code: %v", err)
	}
}

// refuseBadRequest answers a stream the way the client does when
// ReadRequest fails: a *wire.Error goes back as the refusal.
func refuseBadRequest(t *testing.T, s netpath.Stream) {
	t.Helper()
	_, err := tunnel.ReadRequest(s)
	var werr *wire.Error
	if !errors.As(err, &werr) || werr.Code != pb.ErrorCode_ERROR_CODE_BAD_REQUEST {
		t.Fatalf("ReadRequest: %v, want BAD_REQUEST", err)
	}
	(&tunnel.Incoming{Stream: s}).Refuse(werr)
}

func TestRequestWithoutEndpoint(t *testing.T) {
	src, dst := pathPair(t)
	ctx := testContext(t)
	ch := openAsync(ctx, src, tunnel.Request{Origin: netip.MustParseAddrPort("192.0.2.1:1")})
	refuseBadRequest(t, accept(ctx, t, dst))
	_, err := result(t, ch)
	if !tunnel.IsRefusal(err) || !errors.Is(err, &wire.Error{Code: pb.ErrorCode_ERROR_CODE_BAD_REQUEST}) {
		t.Fatalf("Open without endpoint: %v, want a BAD_REQUEST refusal", err)
	}
}

func TestRequestWithBadOrigin(t *testing.T) {
	src, dst := pathPair(t)
	ctx := testContext(t)
	for _, origin := range []*pb.AddrPort{{}, {Ip: []byte{1, 2, 3}, Port: 80}, {Ip: []byte{1, 2, 3, 4}}} {
		s, err := src.OpenStream(ctx, "web")
		if err != nil {
			t.Fatal(err)
		}
		_ = s.SetDeadline(time.Now().Add(testTimeout))
		if err := wire.Write(s, &pb.StreamRequest{Endpoint: "web", Origin: origin}); err != nil {
			t.Fatal(err)
		}
		// Read the answer as Open does, resetting the stream after it:
		// Refuse waits for that (or its timeout) before it returns.
		replies := make(chan error, 1)
		var reply pb.StreamReply
		go func() {
			err := wire.Read(s, &reply, wire.MaxStreamHeader)
			s.Reset()
			replies <- err
		}()
		refuseBadRequest(t, accept(ctx, t, dst))
		if err := <-replies; err != nil {
			t.Fatal(err)
		}
		if reply.GetError().GetCode() != pb.ErrorCode_ERROR_CODE_BAD_REQUEST {
			t.Fatalf("origin %v: reply %v, want BAD_REQUEST", origin, &reply)
		}
	}
}

// TestOpenPathFailures: failures that are not answers from the destination
// are not refusals.
func TestOpenPathFailures(t *testing.T) {
	src, dst := pathPair(t)
	ctx := testContext(t)

	// The destination abandons the stream without answering.
	ch := openAsync(ctx, src, tunnel.Request{Endpoint: "web"})
	s := accept(ctx, t, dst)
	if _, err := tunnel.ReadRequest(s); err != nil {
		t.Fatal(err)
	}
	s.Reset()
	if _, err := result(t, ch); err == nil || tunnel.IsRefusal(err) {
		t.Fatalf("Open of a reset stream: %v, want a failure that is not a refusal", err)
	}

	// The source gives up while the destination is silent.
	cause := errors.New("caller gave up")
	octx, cancel := context.WithCancelCause(ctx)
	ch = openAsync(octx, src, tunnel.Request{Endpoint: "web"})
	s = accept(ctx, t, dst)
	if _, err := tunnel.ReadRequest(s); err != nil {
		t.Fatal(err)
	}
	cancel(cause)
	if _, err := result(t, ch); !errors.Is(err, cause) || tunnel.IsRefusal(err) {
		t.Fatalf("Open cancelled: %v, want the cancel cause", err)
	}
	s.Reset()
}

// splicePair opens a tunnel (source stream s, destination stream d) and a
// TCP connection (app, the socket the destination dialed: tc), and splices
// d with tc. The returned channel yields Splice's counts.
func splicePair(t testing.TB) (s netpath.Stream, app *net.TCPConn, done <-chan [2]int64) {
	t.Helper()
	src, dst := pathPair(t)
	return spliceOn(t, src, dst)
}

// spliceOn is splicePair over the paths src and dst of one connection.
func spliceOn(t testing.TB, src, dst *netpath.QUIC) (s netpath.Stream, app *net.TCPConn, done <-chan [2]int64) {
	t.Helper()
	ctx := testContext(t)
	ch := openAsync(ctx, src, tunnel.Request{Endpoint: "web"})
	in, err := tunnel.ReadRequest(accept(ctx, t, dst))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Accept(); err != nil {
		t.Fatal(err)
	}
	if s, err = result(t, ch); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Reset() })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	app = c.(*net.TCPConn)
	t.Cleanup(func() { _ = app.Close() })
	_ = app.SetDeadline(time.Now().Add(testTimeout))
	tc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	counts := make(chan [2]int64, 1)
	go func() {
		ab, ba := tunnel.Splice(in.Stream, tunnel.TCP(tc))
		counts <- [2]int64{ab, ba}
	}()
	return s, app, counts
}

func waitSplice(t testing.TB, done <-chan [2]int64, ab, ba int64) {
	t.Helper()
	select {
	case got := <-done:
		if got != [2]int64{ab, ba} {
			t.Fatalf("Splice copied %d stream→tcp and %d tcp→stream, want %d and %d", got[0], got[1], ab, ba)
		}
	case <-time.After(testTimeout):
		t.Fatal("Splice did not return after both directions ended")
	}
}

// TestSpliceHalfClose: the end of one direction reaches the far side as an
// EOF while the other direction keeps working, whichever side ends first.
func TestSpliceHalfClose(t *testing.T) {
	t.Run("stream ends first", func(t *testing.T) {
		s, app, done := splicePair(t)
		if _, err := s.Write([]byte("ping!")); err != nil {
			t.Fatal(err)
		}
		_ = s.CloseWrite()
		if got, err := io.ReadAll(app); err != nil || string(got) != "ping!" {
			t.Fatalf("tcp side read %q, %v; want ping! then EOF", got, err)
		}
		if _, err := app.Write([]byte("pong")); err != nil {
			t.Fatalf("tcp side cannot write after its read side ended: %v", err)
		}
		_ = app.CloseWrite()
		if got, err := readAll(t, s); err != nil || string(got) != "pong" {
			t.Fatalf("stream side read %q, %v; want pong then EOF", got, err)
		}
		waitSplice(t, done, 5, 4)
	})
	t.Run("tcp ends first", func(t *testing.T) {
		s, app, done := splicePair(t)
		if _, err := app.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		_ = app.CloseWrite()
		if got, err := readAll(t, s); err != nil || string(got) != "hello" {
			t.Fatalf("stream side read %q, %v; want hello then EOF", got, err)
		}
		if _, err := s.Write([]byte("world!!")); err != nil {
			t.Fatalf("stream side cannot write after its read side ended: %v", err)
		}
		_ = s.CloseWrite()
		if got, err := io.ReadAll(app); err != nil || string(got) != "world!!" {
			t.Fatalf("tcp side read %q, %v; want world!! then EOF", got, err)
		}
		waitSplice(t, done, 7, 5)
	})
}

// TestSpliceResetIsNotEOF: a connection that breaks reaches the far side
// as an error, never as a clean end that would hide truncation.
func TestSpliceResetIsNotEOF(t *testing.T) {
	s, app, done := splicePair(t)
	if _, err := app.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("partial"))
	_ = s.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(s, buf); err != nil {
		t.Fatal(err)
	}
	// Closing with linger 0 sends a TCP reset.
	_ = app.SetLinger(0)
	_ = app.Close()
	got, err := io.ReadAll(s)
	var serr *quic.StreamError
	if !errors.As(err, &serr) {
		t.Fatalf("after a TCP reset the stream side read %q, %v; want a stream error", got, err)
	}
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("Splice did not return after a reset")
	}
}

// bytesStream is a netpath.Stream that reads from a byte slice and discards
// what is written.
type bytesStream struct{ *bytes.Reader }

func (bytesStream) Write(b []byte) (int, error)      { return len(b), nil }
func (bytesStream) CloseWrite() error                { return nil }
func (bytesStream) Close() error                     { return nil }
func (bytesStream) Reset()                           {}
func (bytesStream) SetDeadline(time.Time) error      { return nil }
func (bytesStream) SetReadDeadline(time.Time) error  { return nil }
func (bytesStream) SetWriteDeadline(time.Time) error { return nil }
func (s bytesStream) pos(data []byte) int            { return len(data) - s.Len() }
func newBytesStream(data []byte) bytesStream         { return bytesStream{bytes.NewReader(data)} }
func frameOf(t testing.TB, m proto.Message) []byte   { return appendFrame(t, nil, m) }

func appendFrame(t testing.TB, b []byte, m proto.Message) []byte {
	var buf bytes.Buffer
	if err := wire.Write(&buf, m); err != nil {
		t.Fatal(err)
	}
	return append(b, buf.Bytes()...)
}

// FuzzReadRequest reads arbitrary bytes as a stream header. ReadRequest
// must not panic, must accept exactly the well-formed requests (decodable,
// within the cap, naming an endpoint, with a valid origin if any), must
// consume exactly the header, and must refuse with BAD_REQUEST whatever it
// decoded but cannot accept.
func FuzzReadRequest(f *testing.F) {
	f.Add(frameOf(f, &pb.StreamRequest{Endpoint: "web", Origin: wire.FromAddrPort(netip.MustParseAddrPort("192.0.2.1:80"))}))
	f.Add(frameOf(f, &pb.StreamRequest{Endpoint: "web"}))
	f.Add(frameOf(f, &pb.StreamRequest{Origin: &pb.AddrPort{}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newBytesStream(data)
		in, err := tunnel.ReadRequest(s)

		// The oracle: what a correct reader makes of data.
		var msg pb.StreamRequest
		framed := len(data) >= 4
		var size int
		if framed {
			size = int(binary.BigEndian.Uint32(data))
			framed = size <= wire.MaxStreamHeader && len(data) >= 4+size
		}
		decoded := framed && proto.Unmarshal(data[4:4+size], &msg) == nil
		var origin netip.AddrPort
		originOK := true
		if decoded && msg.Origin != nil {
			var oerr error
			origin, oerr = wire.ToAddrPort(msg.Origin)
			originOK = oerr == nil
		}
		wantOK := decoded && originOK && msg.GetEndpoint() != ""

		if (err == nil) != wantOK {
			t.Fatalf("ReadRequest: %v; want success: %v", err, wantOK)
		}
		if decoded {
			if p := s.pos(data); p != 4+size {
				t.Fatalf("reader at %d after a header of %d bytes", p, 4+size)
			}
		}
		if err != nil {
			if in != nil {
				t.Fatalf("failed with a request: %+v", in)
			}
			var werr *wire.Error
			if errors.As(err, &werr) != decoded {
				t.Fatalf("error %v: a protocol error must come exactly for decoded headers", err)
			}
			if decoded && werr.Code != pb.ErrorCode_ERROR_CODE_BAD_REQUEST {
				t.Fatalf("refused with code %v, want BAD_REQUEST", werr.Code)
			}
			return
		}
		if in.Endpoint != msg.GetEndpoint() || in.Origin != origin || in.Stream != netpath.Stream(s) {
			t.Fatalf("request %+v, want endpoint %q origin %v", in.Request, msg.GetEndpoint(), origin)
		}
		// The request survives being sent again.
		req := &pb.StreamRequest{Endpoint: in.Endpoint}
		if in.Origin.IsValid() {
			req.Origin = wire.FromAddrPort(in.Origin)
		}
		again, err := tunnel.ReadRequest(newBytesStream(frameOf(t, req)))
		if err != nil || again.Request != in.Request {
			t.Fatalf("re-sent request read as %+v, %v; want %+v", again, err, in.Request)
		}
	})
}
