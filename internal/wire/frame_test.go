package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"runtime/metrics"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"google.golang.org/protobuf/proto"
)

// samples are realistic messages of each type read off streams: every field
// set, nested messages and repeated fields included.
func samples() []proto.Message {
	v4 := wire.FromAddrPort(netip.MustParseAddrPort("192.0.2.7:4242"))
	v6 := wire.FromAddrPort(netip.MustParseAddrPort("[2001:db8::1]:19190"))
	id := bytes.Repeat([]byte{0xab}, 32)
	return []proto.Message{
		&pb.Hello{Token: "token-d", Metadata: "host=a", BuildVersion: "v0.0.0-test"},
		&pb.HelloReply{Observed: v4, ClientId: id},
		&pb.HelloReply{Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_AUTH_FAILED, Message: "unknown token"}},
		&pb.ClientState{
			LocalAddrs: []*pb.AddrPort{v4, v6},
			Endpoints: []*pb.Endpoint{
				{Name: "web", Role: pb.Role_ROLE_DESTINATION, Route: pb.Route_ROUTE_DIRECT, RelayEncryptions: []string{"tls"}},
				{Name: "db", Role: pb.Role_ROLE_SOURCE},
			},
			Relays: [][]byte{id},
		},
		&pb.ServerState{
			Peers: []*pb.Peer{{
				Id: id, Certificate: bytes.Repeat([]byte{0x30}, 300), Candidates: []*pb.AddrPort{v4, v6},
				Metadata: "m", Endpoints: []*pb.PeerEndpoint{{Name: "web", Role: pb.Role_ROLE_SOURCE}},
			}},
			Refused: []*pb.EndpointStatus{{Name: "x", Role: pb.Role_ROLE_SOURCE,
				Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_ENDPOINT_FORBIDDEN, Message: "no"}}},
			Observed: v4,
		},
		&pb.StreamRequest{Endpoint: "web", Origin: v6},
		&pb.StreamRequest{Endpoint: "web"},
		&pb.StreamReply{},
		&pb.StreamReply{Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_DESTINATION_NOT_FOUND, Message: "no web here"}},
	}
}

// frame returns m as wire.Write frames it.
func frame(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := wire.Write(&buf, m); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// header is a bare length header announcing n bytes.
func header(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

// heapAllocs is the running total of bytes allocated on the heap. Large
// allocations (like a buffer of an announced frame size) count at once.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func TestRoundTrip(t *testing.T) {
	for _, m := range samples() {
		data := frame(t, m)
		if got, want := binary.BigEndian.Uint32(data), uint32(proto.Size(m)); got != want || len(data) != 4+int(want) {
			t.Fatalf("%T: header says %d, message is %d bytes, frame %d", m, got, want, len(data))
		}
		got := m.ProtoReflect().New().Interface()
		if err := wire.Read(bytes.NewReader(data), got, len(data)-4); err != nil {
			t.Fatalf("%T: read at exactly the cap: %v", m, err)
		}
		if !proto.Equal(got, m) {
			t.Fatalf("%T: read %v, wrote %v", m, got, m)
		}
	}
}

// TestReadStopsAtFrame reads frames back to back followed by raw bytes, one
// byte per Read call, as a stream carrying a header and then a connection
// would deliver them: each Read takes exactly its frame.
func TestReadStopsAtFrame(t *testing.T) {
	var stream bytes.Buffer
	ms := samples()
	for _, m := range ms {
		stream.Write(frame(t, m))
	}
	raw := []byte("raw bytes after the headers\x00\x00\x00\x01")
	stream.Write(raw)
	r := iotest.OneByteReader(&stream)
	for _, m := range ms {
		got := m.ProtoReflect().New().Interface()
		if err := wire.Read(r, got, wire.MaxControlMessage); err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !proto.Equal(got, m) {
			t.Fatalf("%T: read %v, wrote %v", m, got, m)
		}
	}
	rest, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(rest, raw) {
		t.Fatalf("after the frames: %q, %v; want %q", rest, err, raw)
	}
}

func TestEmptyMessage(t *testing.T) {
	data := frame(t, &pb.StreamReply{})
	if !bytes.Equal(data, []byte{0, 0, 0, 0}) {
		t.Fatalf("empty message framed as %x", data)
	}
	var got pb.StreamReply
	if err := wire.Read(bytes.NewReader(data), &got, 0); err != nil {
		t.Fatalf("empty frame with cap 0: %v", err)
	}
}

// countingWriter records each Write call.
type countingWriter struct {
	bytes.Buffer
	calls int
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.calls++
	return w.Buffer.Write(b)
}

// TestWriteIsOneCall: header and message go out in one Write, so writers
// sharing a stream cannot interleave inside a frame.
func TestWriteIsOneCall(t *testing.T) {
	for _, m := range samples() {
		var w countingWriter
		if err := wire.Write(&w, m); err != nil {
			t.Fatal(err)
		}
		if w.calls != 1 {
			t.Fatalf("%T: %d Write calls, want 1", m, w.calls)
		}
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteErrors(t *testing.T) {
	boom := errors.New("boom")
	err := wire.Write(failingWriter{boom}, &pb.Hello{Token: "t"})
	if !errors.Is(err, boom) {
		t.Fatalf("write error: %v, want it wrapped", err)
	}
	// proto3 strings must be UTF-8: the message cannot be encoded and
	// nothing may be written.
	var w countingWriter
	if err := wire.Write(&w, &pb.Hello{Token: "\xff\xfe"}); err == nil {
		t.Fatal("encoded a string that is not UTF-8")
	}
	if w.calls != 0 {
		t.Fatalf("%d writes of a message that failed to encode", w.calls)
	}
}

func TestReadErrors(t *testing.T) {
	hello := frame(t, &pb.Hello{Token: "secret", Metadata: "meta"})
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		r    io.Reader
		max  int
		want error
		// pos is where the reader must stand afterwards (-1: not checked).
		pos int
	}{
		{"empty", bytes.NewReader(nil), 1024, io.EOF, 0},
		{"half a header", bytes.NewReader([]byte{0, 0}), 1024, io.ErrUnexpectedEOF, 2},
		{"truncated body", bytes.NewReader(hello[:len(hello)-1]), 1024, io.ErrUnexpectedEOF, len(hello) - 1},
		{"header only", bytes.NewReader(hello[:4]), 1024, io.ErrUnexpectedEOF, 4},
		{"one byte over the cap", bytes.NewReader(hello), len(hello) - 5, wire.ErrTooLarge, 4},
		{"cap zero", bytes.NewReader(hello), 0, wire.ErrTooLarge, 4},
		{"max uint32", bytes.NewReader(append(header(1<<32-1), 1, 2, 3)), wire.MaxControlMessage, wire.ErrTooLarge, 4},
		{"reader error in header", iotest.ErrReader(boom), 1024, boom, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m pb.Hello
			err := wire.Read(tc.r, &m, tc.max)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want an error wrapping %v", err, tc.want)
			}
			if br, ok := tc.r.(*bytes.Reader); ok && tc.pos >= 0 {
				if pos := int(br.Size()) - br.Len(); pos != tc.pos {
					t.Fatalf("reader at %d, want %d", pos, tc.pos)
				}
			}
			if !strings.Contains(err.Error(), "pb.Hello") {
				t.Fatalf("error %q does not name the message type", err)
			}
		})
	}
}

func TestReadUndecodable(t *testing.T) {
	// A complete frame whose body is not a Hello: an unterminated varint.
	data := append(header(4), 0xff, 0xff, 0xff, 0xff)
	r := bytes.NewReader(append(data, 'x'))
	var m pb.Hello
	err := wire.Read(r, &m, 1024)
	if err == nil || errors.Is(err, wire.ErrTooLarge) || errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("undecodable frame: %v, want a decode error", err)
	}
	if r.Len() != 1 {
		t.Fatalf("reader left with %d bytes, want the 1 after the frame", r.Len())
	}
}

// TestTooLargeDoesNotAllocate: a header announcing nearly 4 GiB must be
// refused before a buffer of that size exists.
func TestTooLargeDoesNotAllocate(t *testing.T) {
	data := append(header(1<<32-1), make([]byte, 64)...)
	before := heapAllocs()
	for range 10 {
		var m pb.ServerState
		if err := wire.Read(bytes.NewReader(data), &m, wire.MaxControlMessage); !errors.Is(err, wire.ErrTooLarge) {
			t.Fatalf("got %v, want ErrTooLarge", err)
		}
	}
	if d := heapAllocs() - before; d > 1<<20 {
		t.Fatalf("refusing 10 oversized frames allocated %d bytes", d)
	}
}

func TestAddrPort(t *testing.T) {
	for _, tc := range []struct {
		in   *pb.AddrPort
		want string // "" for an error
	}{
		{nil, ""},
		{&pb.AddrPort{}, ""},
		{&pb.AddrPort{Ip: []byte{127, 0, 0, 1}}, ""},
		{&pb.AddrPort{Ip: []byte{127, 0, 0, 1}, Port: 65536}, ""},
		{&pb.AddrPort{Ip: []byte{127, 0, 0}, Port: 80}, ""},
		{&pb.AddrPort{Ip: make([]byte, 17), Port: 80}, ""},
		{&pb.AddrPort{Ip: []byte{127, 0, 0, 1}, Port: 80}, "127.0.0.1:80"},
		{&pb.AddrPort{Ip: []byte{127, 0, 0, 1}, Port: 65535}, "127.0.0.1:65535"},
		{&pb.AddrPort{Ip: netip.MustParseAddr("2001:db8::1").AsSlice(), Port: 1}, "[2001:db8::1]:1"},
		// IPv4-mapped IPv6 is unmapped, so both ends compare alike.
		{&pb.AddrPort{Ip: netip.MustParseAddr("::ffff:10.1.2.3").AsSlice(), Port: 9}, "10.1.2.3:9"},
	} {
		got, err := wire.ToAddrPort(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("ToAddrPort(%v) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("ToAddrPort(%v) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	mapped := wire.FromAddrPort(netip.MustParseAddrPort("[::ffff:10.1.2.3]:9"))
	if len(mapped.GetIp()) != 4 {
		t.Errorf("FromAddrPort kept an IPv4-mapped address as %d bytes", len(mapped.GetIp()))
	}
}

func TestErrorConversions(t *testing.T) {
	e := wire.Errorf(pb.ErrorCode_ERROR_CODE_LIMIT, "%d streams", 7)
	back := wire.FromPB(wire.ToPB(e))
	if !errors.Is(back, &wire.Error{Code: pb.ErrorCode_ERROR_CODE_LIMIT}) || errors.Is(back, &wire.Error{Code: pb.ErrorCode_ERROR_CODE_AUTH_FAILED}) {
		t.Fatalf("round trip lost the code: %v", back)
	}
	if !strings.Contains(back.Error(), "7 streams") {
		t.Fatalf("round trip lost the message: %v", back)
	}
	if wire.ToPB(nil) != nil || wire.FromPB(nil) != nil {
		t.Fatal("nil error did not stay nil")
	}
	plain := wire.ToPB(errors.New("plain"))
	if plain.GetCode() != pb.ErrorCode_ERROR_CODE_UNSPECIFIED || plain.GetMessage() != "plain" {
		t.Fatalf("plain error sent as %v", plain)
	}
}

// TestAnnouncedSizeIsNotAllocated: a header within the cap but with little
// body behind it (a peer announcing a large frame and sending nothing more)
// must not make Read allocate the announced size; it used to, so a few
// streams of four bytes each pinned the cap many times over.
func TestAnnouncedSizeIsNotAllocated(t *testing.T) {
	data := append(header(wire.MaxControlMessage), make([]byte, 100)...)
	before := heapAllocs()
	for range 10 {
		var m pb.ServerState
		if err := wire.Read(bytes.NewReader(data), &m, wire.MaxControlMessage); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("got %v, want ErrUnexpectedEOF", err)
		}
	}
	if d := heapAllocs() - before; d > 1<<20 {
		t.Fatalf("10 frames announcing %d bytes with 100 sent allocated %d bytes", wire.MaxControlMessage, d)
	}
}

// TestLargeFrameGrows: a frame larger than the first chunk of the buffer
// arrives whole, in pieces of any size.
func TestLargeFrameGrows(t *testing.T) {
	m := &pb.Hello{Token: strings.Repeat("t", 300<<10)}
	data := frame(t, m)
	for _, r := range []io.Reader{bytes.NewReader(data), iotest.OneByteReader(bytes.NewReader(data)), iotest.HalfReader(bytes.NewReader(data))} {
		var got pb.Hello
		if err := wire.Read(r, &got, wire.MaxControlMessage); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&got, m) {
			t.Fatal("read a different message")
		}
	}
}
