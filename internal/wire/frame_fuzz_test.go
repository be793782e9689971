package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"google.golang.org/protobuf/proto"
)

// fuzzCaps are the size caps each input is read with: small, so that both
// sides of the cap are easy for the fuzzer to reach.
var fuzzCaps = []int{0, 3, 100, 1 << 12}

// fuzzTypes are the messages read off streams by the control, relay and
// peer protocols.
func fuzzTypes() []proto.Message {
	return []proto.Message{
		&pb.Hello{}, &pb.ClientState{}, &pb.ServerState{}, &pb.StreamRequest{}, &pb.StreamReply{},
		&pb.SignedGrant{}, &pb.RelayHello{}, &pb.RelayHelloReply{}, &pb.RelayReply{},
		&pb.RelayConnect{}, &pb.RelayIncoming{}, &pb.RelayedHello{},
	}
}

// FuzzRead reads arbitrary bytes as one frame of each message type. Read must
// not panic, must consume exactly the frame (or all there is of a truncated
// one, or only the header of an oversized one), must refuse an oversized
// frame with ErrTooLarge before allocating its announced size, and must
// decode exactly what proto.Unmarshal decodes from the frame's body.
func FuzzRead(f *testing.F) {
	for _, m := range samples() {
		data := frame(f, m)
		f.Add(data)
		f.Add(data[:len(data)-1])
		f.Add(append(data, 0xde, 0xad))
	}
	f.Add(header(1<<32 - 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, typ := range fuzzTypes() {
			for _, max := range fuzzCaps {
				checkRead(t, data, typ, max)
			}
		}
	})
}

func checkRead(t *testing.T, data []byte, typ proto.Message, max int) {
	m := typ.ProtoReflect().New().Interface()
	r := bytes.NewReader(data)
	before := heapAllocs()
	err := wire.Read(r, m, max)
	allocated := heapAllocs() - before
	pos := len(data) - r.Len()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%T, cap %d, %d bytes: "+format, append([]any{m, max, len(data)}, args...)...)
	}

	if len(data) < 4 {
		if err == nil || (!errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF)) {
			fail("short header: %v, want EOF", err)
		}
		if pos != len(data) {
			fail("short header: reader at %d", pos)
		}
		return
	}
	size := int64(binary.BigEndian.Uint32(data))
	switch {
	case size > int64(max):
		if !errors.Is(err, wire.ErrTooLarge) {
			fail("frame of %d bytes: %v, want ErrTooLarge", size, err)
		}
		if pos != 4 {
			fail("oversized frame: reader at %d, want 4 (the header only)", pos)
		}
		if size >= 4<<20 && allocated >= 1<<20 {
			fail("refusing a frame of %d bytes allocated %d bytes", size, allocated)
		}
	case int64(len(data)) < 4+size:
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			fail("truncated frame: %v, want ErrUnexpectedEOF", err)
		}
		if pos != len(data) {
			fail("truncated frame: reader at %d of %d", pos, len(data))
		}
	default:
		if int64(pos) != 4+size {
			fail("frame of %d bytes: reader at %d, want %d", size, pos, 4+size)
		}
		body := data[4 : 4+size]
		want := typ.ProtoReflect().New().Interface()
		werr := proto.Unmarshal(body, want)
		if (err == nil) != (werr == nil) {
			fail("Read: %v, proto.Unmarshal: %v", err, werr)
		}
		if err != nil {
			if errors.Is(err, wire.ErrTooLarge) || errors.Is(err, io.ErrUnexpectedEOF) {
				fail("undecodable frame reported as %v", err)
			}
			return
		}
		if !proto.Equal(m, want) {
			fail("Read gave %v, proto.Unmarshal %v", m, want)
		}
		// What was read can be written and read back.
		var buf bytes.Buffer
		if err := wire.Write(&buf, m); err != nil {
			fail("writing back: %v", err)
		}
		again := typ.ProtoReflect().New().Interface()
		if err := wire.Read(&buf, again, wire.MaxControlMessage); err != nil {
			fail("reading back: %v", err)
		}
		if !proto.Equal(m, again) {
			fail("read back %v, wrote %v", again, m)
		}
		if buf.Len() != 0 {
			fail("%d bytes left after reading back", buf.Len())
		}
	}
}

// FuzzAddrPort converts arbitrary wire addresses. ToAddrPort must not panic,
// must accept exactly 4- or 16-byte IPs with a port in 1..65535, and what it
// accepts must come back unchanged through FromAddrPort.
func FuzzAddrPort(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1}, uint32(80))
	f.Add(netip.MustParseAddr("::ffff:192.0.2.1").AsSlice(), uint32(65535))
	f.Add(netip.MustParseAddr("2001:db8::1").AsSlice(), uint32(65536))
	f.Add([]byte{}, uint32(0))
	f.Fuzz(func(t *testing.T, ip []byte, port uint32) {
		in := &pb.AddrPort{Ip: ip, Port: port}
		ap, err := wire.ToAddrPort(in)
		valid := (len(ip) == 4 || len(ip) == 16) && port >= 1 && port <= 65535
		if valid != (err == nil) {
			t.Fatalf("ToAddrPort(%x, %d) = %v, %v", ip, port, ap, err)
		}
		if err != nil {
			return
		}
		if !ap.IsValid() || uint32(ap.Port()) != port || ap.Addr().Is4In6() || ap.Addr().Zone() != "" {
			t.Fatalf("ToAddrPort(%x, %d) = %v", ip, port, ap)
		}
		out := wire.FromAddrPort(ap)
		if ap.Addr().Is4() != (len(out.GetIp()) == 4) {
			t.Fatalf("FromAddrPort(%v) gave %d bytes of IP", ap, len(out.GetIp()))
		}
		back, err := wire.ToAddrPort(out)
		if err != nil || back != ap {
			t.Fatalf("round trip of %v gave %v, %v", ap, back, err)
		}
		// The wire form survives encoding as well.
		b, err := proto.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		var decoded pb.AddrPort
		if err := proto.Unmarshal(b, &decoded); err != nil {
			t.Fatal(err)
		}
		if again, err := wire.ToAddrPort(&decoded); err != nil || again != ap {
			t.Fatalf("encoded round trip of %v gave %v, %v", ap, again, err)
		}
	})
}
