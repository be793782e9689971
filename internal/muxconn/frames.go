package muxconn

import (
	"encoding/binary"
	"errors"
	"sync"
)

// yamux keeps every data frame it receives in a buffer of its own until
// the stream's reader takes it, and holds a stream to its window in bytes
// only: a stream whose 256 KiB window was filled one byte per frame held
// 6.7 MiB at a relay, so a client within its window budget (see
// budget.go) could still pin gigabytes. A server session therefore also
// counts the frames it holds unread: below yamux, where the frames go by,
// and above it, where its streams are read. A client that keeps more than
// maxUnreadFrames unread ends its session. connet's clients write up to
// 64 KiB at a time, so a full 64 MiB budget is about a thousand frames;
// the bound keeps what yamux spends on frames to a few MiB per client.
const maxUnreadFrames = 1 << 16

// errTooManyFrames ends a session over maxUnreadFrames.
var errTooManyFrames = errors.New("muxconn: too many small frames left unread (the client sends data in tiny pieces to streams that are not read)")

// yamux's frame header (its spec, "Framing"): version, type, flags, stream
// id and length, big endian; a data frame's length bytes follow it.
const (
	frameHeaderLen = 12
	frameTypeData  = 0
)

// frameMeter counts one server session's data frames not yet read. The
// session's reading goroutine feeds it what it receives (observe); its
// streams' readers take frames off as they read them (consume).
type frameMeter struct {
	mu sync.Mutex
	// unread are the lengths of each stream's frames not yet read, in
	// order (the first may be partly read).
	unread map[uint32]*streamFrames
	frames int

	// The parser, touched by the reading goroutine alone: the header so
	// far, and how much of the current frame's data is still to pass.
	hdr  [frameHeaderLen]byte
	hdrN int
	skip uint32
}

// streamFrames are one stream's frames not yet read.
type streamFrames struct {
	sizes []uint32
	// claimed is set once the stream is the server's (accepted or
	// opened); see claim.
	claimed bool
}

func newFrameMeter() *frameMeter { return &frameMeter{unread: map[uint32]*streamFrames{}} }

// observe parses b, the next bytes of the session as received, and counts
// its data frames. It fails once the session holds too many unread.
func (f *frameMeter) observe(b []byte) error {
	for len(b) > 0 {
		if f.skip > 0 {
			k := uint32(min(len(b), int(min(f.skip, 1<<30))))
			f.skip -= k
			b = b[k:]
			continue
		}
		k := copy(f.hdr[f.hdrN:], b)
		f.hdrN += k
		b = b[k:]
		if f.hdrN < frameHeaderLen {
			return nil
		}
		f.hdrN = 0
		if f.hdr[1] != frameTypeData {
			continue
		}
		length := binary.BigEndian.Uint32(f.hdr[8:12])
		if length == 0 {
			continue
		}
		f.skip = length
		if err := f.add(binary.BigEndian.Uint32(f.hdr[4:8]), length); err != nil {
			return err
		}
	}
	return nil
}

func (f *frameMeter) add(id, length uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.unread[id]
	if s == nil {
		s = &streamFrames{}
		f.unread[id] = s
	}
	s.sizes = append(s.sizes, length)
	f.frames++
	if f.frames > maxUnreadFrames {
		return errTooManyFrames
	}
	return nil
}

// consume takes n bytes read from stream id off its frames.
func (f *frameMeter) consume(id uint32, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.unread[id]
	if s == nil {
		return
	}
	for n > 0 && len(s.sizes) > 0 {
		if int(s.sizes[0]) > n {
			s.sizes[0] -= uint32(n)
			break
		}
		n -= int(s.sizes[0])
		s.sizes = s.sizes[1:]
		f.frames--
	}
	if len(s.sizes) == 0 {
		delete(f.unread, id)
	}
}

// claim marks stream id as the server's. yamux takes the client's new
// streams in order and resets those it cannot take (its backlog is
// full), then drops their frames unread: the frames of an unclaimed
// client stream older than a claimed one are no longer held anywhere.
func (f *frameMeter) claim(id uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.unread[id]; s != nil {
		s.claimed = true
	}
	for other, s := range f.unread {
		if !s.claimed && other < id && other%2 == id%2 {
			f.frames -= len(s.sizes)
			delete(f.unread, other)
		}
	}
}

// forget drops stream id's frames: the stream ended, and yamux with it.
func (f *frameMeter) forget(id uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.unread[id]; s != nil {
		f.frames -= len(s.sizes)
		delete(f.unread, id)
	}
}
