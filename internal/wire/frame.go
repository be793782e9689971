package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"google.golang.org/protobuf/proto"
)

// Size caps for one framed message. A control message carries at most the
// peers of one client, a stream header only a name and an address.
const (
	MaxControlMessage = 4 << 20
	MaxStreamHeader   = 16 << 10
)

// readChunk is how far Read's buffer may run ahead of the bytes that have
// arrived. The announced length of a frame is only a claim: allocating it
// up front let a peer pin the full cap per stream with four bytes, so the
// buffer starts at this size and at most doubles as data comes in.
const readChunk = 16 << 10

// ErrTooLarge reports a frame whose announced length exceeds the cap.
var ErrTooLarge = errors.New("wire: message too large")

// Write sends m as one frame: a 4-byte big-endian length, then the message.
// Frame and message go out in one Write so a stream never carries half a
// header followed by another writer's bytes.
func Write(w io.Writer, m proto.Message) error {
	buf, err := Append(nil, m)
	if err != nil {
		return err
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("wire: write %T: %w", m, err)
	}
	return nil
}

// Append appends m to buf as one frame, as Write sends it, for a caller
// that sends more behind the frame in the same write.
func Append(buf []byte, m proto.Message) ([]byte, error) {
	size := proto.Size(m)
	buf = slices.Grow(buf, 4+size)
	buf = binary.BigEndian.AppendUint32(buf, uint32(size))
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		return nil, fmt.Errorf("wire: encode %T: %w", m, err)
	}
	return buf, nil
}

// Read reads one frame of at most max bytes into m. It reads exactly the
// frame and nothing past it, so the stream can carry raw bytes afterwards.
func Read(r io.Reader, m proto.Message, max int) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("wire: read %T: %w", m, err)
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if max < 0 || uint64(size) > uint64(max) {
		return fmt.Errorf("wire: read %T: %d bytes (limit %d): %w", m, size, max, ErrTooLarge)
	}
	buf, err := readBody(r, int(size))
	if err != nil {
		return fmt.Errorf("wire: read %T: %w", m, err)
	}
	if err := proto.Unmarshal(buf, m); err != nil {
		return fmt.Errorf("wire: decode %T: %w", m, err)
	}
	return nil
}

// readBody reads exactly size bytes, growing its buffer only as they arrive:
// it starts at readChunk and doubles only when full, so it never holds more
// than twice what has arrived (or readChunk).
func readBody(r io.Reader, size int) ([]byte, error) {
	buf := make([]byte, 0, min(size, readChunk))
	for len(buf) < size {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(size-len(buf), len(buf)))
		}
		end := min(size, cap(buf))
		n, err := io.ReadFull(r, buf[len(buf):end])
		buf = buf[:len(buf)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}
