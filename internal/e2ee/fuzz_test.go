package e2ee

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/flynn/noise"
)

// byteTransport reads records from fixed bytes and discards writes.
type byteTransport struct{ *bytes.Reader }

func (byteTransport) Write(b []byte) (int, error)      { return len(b), nil }
func (byteTransport) CloseWrite() error                { return nil }
func (byteTransport) Close() error                     { return nil }
func (byteTransport) Reset()                           {}
func (byteTransport) SetDeadline(time.Time) error      { return nil }
func (byteTransport) SetReadDeadline(time.Time) error  { return nil }
func (byteTransport) SetWriteDeadline(time.Time) error { return nil }

var fuzzKey = [32]byte{1, 2, 3}

func fuzzSealer() *chachaSealer {
	s, err := newChachaSealer(noise.UnsafeNewCipherState(dhxcpSuite, fuzzKey, 0))
	if err != nil {
		panic(err) // a 32-byte key is always accepted
	}
	return s
}

// bufTransport collects what is written.
type bufTransport struct {
	byteTransport
	out *bytes.Buffer
}

func (b bufTransport) Write(p []byte) (int, error) { return b.out.Write(p) }

// sealedRecords builds a valid record stream: data records then an end.
func sealedRecords(chunks ...string) []byte {
	var out bytes.Buffer
	r := newRecords(bufTransport{byteTransport{bytes.NewReader(nil)}, &out}, fuzzSealer(), fuzzSealer())
	for _, c := range chunks {
		_, _ = r.Write([]byte(c))
	}
	_ = r.writeRecord(recordEnd, nil)
	return out.Bytes()
}

// FuzzDHXCPRecords feeds arbitrary bytes to the dhxcp record reader: it
// must never panic, and must end with an error unless the input is a
// valid record stream, which only the key holder can make.
func FuzzDHXCPRecords(f *testing.F) {
	valid, empty := sealedRecords("hello", "world"), sealedRecords()
	f.Add(valid)
	f.Add(empty)
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 1, 2, 3})
	f.Add(valid[:len(valid)-1])
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newRecords(byteTransport{bytes.NewReader(data)}, fuzzSealer(), fuzzSealer())
		got, err := io.ReadAll(r)
		// Reading stops at the end record, so bytes after it do not count.
		if err == nil && !bytes.HasPrefix(data, valid) && !bytes.HasPrefix(data, empty) {
			t.Fatalf("input not made by the key holder read cleanly: %q", got)
		}
	})
}
