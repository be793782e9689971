package e2ee

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Record layout on the wire: a 2-byte big-endian length, then the body.
// The body, once opened, is a type byte followed by the payload.
const (
	recordData byte = 0
	recordEnd  byte = 1
	// recordAuth carries a handshake signature (dhxcp).
	recordAuth byte = 2

	maxBody = 1<<16 - 1
	// aeadOverhead is Poly1305's tag; the plain layer has none.
	aeadOverhead = 16
	// maxPayload keeps every sealed body within the 2-byte length.
	maxPayload = maxBody - aeadOverhead - 1
)

var (
	// ErrTruncated reports a stream that ended without its end record.
	ErrTruncated = fmt.Errorf("e2ee: stream ended without end-of-stream record: %w", io.ErrUnexpectedEOF)
	// ErrCorrupt reports a record that failed authentication: altered,
	// replayed, reordered or dropped on the way.
	ErrCorrupt = errors.New("e2ee: record failed authentication")
)

// sealer protects record bodies in one direction. Each call advances the
// direction's nonce, so records must be opened in the order sealed.
type sealer interface {
	seal(dst, plaintext []byte) ([]byte, error)
	open(dst, body []byte) ([]byte, error)
	overhead() int
}

// transport is what records travel over: the raw relayed stream (dhxcp)
// or a TLS connection on it.
type transport interface {
	io.ReadWriter
	CloseWrite() error
	Close() error
	Reset()
	SetDeadline(time.Time) error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// records is a secured stream: it implements path.Stream.
type records struct {
	t        transport
	out, in  sealer
	wmu      sync.Mutex
	wbuf     []byte
	pbuf     []byte
	rbuf     []byte // the current record's plaintext payload, unread part
	rbody    []byte
	rhdr     [2]byte
	rerr     error
	finished bool
}

func newRecords(t transport, out, in sealer) *records {
	return &records{t: t, out: out, in: in}
}

// writeRecord seals one record and sends it with a single Write.
func (r *records) writeRecord(typ byte, payload []byte) error {
	plain := append(append(r.pbuf[:0], typ), payload...)
	r.pbuf = plain
	buf := append(r.wbuf[:0], 0, 0)
	buf, err := r.out.seal(buf, plain)
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint16(buf, uint16(len(buf)-2))
	r.wbuf = buf
	_, err = r.t.Write(buf)
	return err
}

// readRecord reads and opens the next record.
func (r *records) readRecord() (byte, []byte, error) {
	if _, err := io.ReadFull(r.t, r.rhdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil, ErrTruncated
		}
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint16(r.rhdr[:]))
	if n < 1+r.in.overhead() {
		return 0, nil, fmt.Errorf("%w: record of %d bytes", ErrCorrupt, n)
	}
	if cap(r.rbody) < n {
		r.rbody = make([]byte, n)
	}
	body := r.rbody[:n]
	if _, err := io.ReadFull(r.t, body); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, ErrTruncated
		}
		return 0, nil, err
	}
	plain, err := r.in.open(body[:0], body)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return plain[0], plain[1:], nil
}

func (r *records) Read(b []byte) (int, error) {
	for len(r.rbuf) == 0 {
		if r.rerr != nil {
			return 0, r.rerr
		}
		typ, payload, err := r.readRecord()
		switch {
		case err != nil:
			r.rerr = err
		case typ == recordData:
			r.rbuf = payload
		case typ == recordEnd && len(payload) == 0:
			r.rerr = io.EOF
		default:
			r.rerr = fmt.Errorf("%w: unexpected record type %d", ErrCorrupt, typ)
		}
	}
	n := copy(b, r.rbuf)
	r.rbuf = r.rbuf[n:]
	return n, nil
}

func (r *records) Write(b []byte) (int, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if r.finished {
		return 0, errors.New("e2ee: write after CloseWrite")
	}
	written := 0
	for len(b) > 0 {
		n := min(len(b), maxPayload)
		if err := r.writeRecord(recordData, b[:n]); err != nil {
			return written, err
		}
		written += n
		b = b[n:]
	}
	return written, nil
}

// CloseWrite sends the authenticated end of this direction, then ends the
// transport's sending side.
func (r *records) CloseWrite() error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if r.finished {
		return nil
	}
	r.finished = true
	if err := r.writeRecord(recordEnd, nil); err != nil {
		return err
	}
	return r.t.CloseWrite()
}

// Close ends this direction cleanly (as CloseWrite) and stops reading.
func (r *records) Close() error {
	err := r.CloseWrite()
	if cerr := r.t.Close(); err == nil {
		err = cerr
	}
	return err
}

func (r *records) Reset()                             { r.t.Reset() }
func (r *records) SetDeadline(t time.Time) error      { return r.t.SetDeadline(t) }
func (r *records) SetReadDeadline(t time.Time) error  { return r.t.SetReadDeadline(t) }
func (r *records) SetWriteDeadline(t time.Time) error { return r.t.SetWriteDeadline(t) }
