package muxconn

import (
	"encoding/binary"
	"errors"
	"testing"
)

// dataFrame is a yamux data frame for stream id carrying payload.
func dataFrame(id uint32, payload []byte) []byte {
	b := make([]byte, frameHeaderLen, frameHeaderLen+len(payload))
	b[0], b[1] = 0, frameTypeData
	binary.BigEndian.PutUint32(b[4:8], id)
	binary.BigEndian.PutUint32(b[8:12], uint32(len(payload)))
	return append(b, payload...)
}

// pingFrame is a yamux frame without data, whose length field means
// something else.
func pingFrame() []byte {
	b := make([]byte, frameHeaderLen)
	b[1] = 2
	binary.BigEndian.PutUint32(b[8:12], 1<<20)
	return b
}

// TestFrameMeterCountsWhatIsUnread: the meter parses frames across any
// split of the byte stream, counts data frames (not others, whatever
// their length field says), and takes frames off as they are read.
func TestFrameMeterCountsWhatIsUnread(t *testing.T) {
	var stream []byte
	stream = append(stream, dataFrame(1, []byte("abc"))...)
	stream = append(stream, pingFrame()...)
	stream = append(stream, dataFrame(3, []byte("x"))...)
	stream = append(stream, dataFrame(1, []byte("defg"))...)
	for _, chunk := range []int{1, 2, 5, 13, len(stream)} {
		f := newFrameMeter()
		for b := stream; len(b) > 0; {
			k := min(chunk, len(b))
			if err := f.observe(b[:k]); err != nil {
				t.Fatal(err)
			}
			b = b[k:]
		}
		if f.frames != 3 {
			t.Fatalf("chunks of %d: %d frames counted, want 3", chunk, f.frames)
		}
		f.consume(1, 2) // "ab": the first frame is partly read
		if f.frames != 3 {
			t.Fatalf("a partly read frame was taken off: %d left", f.frames)
		}
		f.consume(1, 3) // "c" and "de"
		if f.frames != 2 {
			t.Fatalf("%d frames left after reading one and a half, want 2", f.frames)
		}
		f.forget(3)
		f.consume(1, 2)
		if f.frames != 0 || len(f.unread) != 0 {
			t.Fatalf("%d frames (%d streams) left after reading all", f.frames, len(f.unread))
		}
	}
}

// TestFrameMeterDropsStreamsYamuxRefused: the frames of a client stream
// that the server never took (yamux reset it) stop counting once a newer
// stream of the client is taken.
func TestFrameMeterDropsStreamsYamuxRefused(t *testing.T) {
	f := newFrameMeter()
	for _, id := range []uint32{1, 3, 5} {
		if err := f.observe(dataFrame(id, []byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	f.claim(1)
	f.claim(5) // 3 was refused
	if f.frames != 2 || f.unread[3] != nil {
		t.Fatalf("%d frames counted, stream 3's kept: %v; want 2, dropped", f.frames, f.unread[3] != nil)
	}
}

// TestFrameMeterLimit: more than maxUnreadFrames unread fails the read
// that brings them.
func TestFrameMeterLimit(t *testing.T) {
	f := newFrameMeter()
	frame := dataFrame(1, []byte{1})
	var err error
	for i := 0; i <= maxUnreadFrames && err == nil; i++ {
		err = f.observe(frame)
	}
	if !errors.Is(err, errTooManyFrames) {
		t.Fatalf("after %d unread frames: %v, want errTooManyFrames", f.frames, err)
	}
}
