package e2ee

import (
	"bytes"
	"io"
	"testing"
)

// benchmarkMode moves 64 KiB writes through both ends of a secured stream
// over the in-memory link: handshake excluded, record layer and cipher in.
// Allocations it reports are the link's (the middle hop copies each record
// into a fresh frame, the pipes' buffers grow); the record layer's own are
// in BenchmarkRecordSeal and BenchmarkRecordOpen, held at 0 by
// TestRecordsAllocs.
func benchmarkMode(b *testing.B, mode Encryption) {
	l := newLink(b, mode == TLS, nil, nil)
	l.aToB.discard, l.bToA.discard = true, true
	a, bID := newID(b), newID(b)
	sa, sb, errA, errB := secure(b, l, mode, a, bID, bID.DER(), a.DER())
	if errA != nil || errB != nil {
		b.Fatal(errA, errB)
	}
	go func() { _, _ = io.Copy(io.Discard, sb) }()
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := sa.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDHXCP(b *testing.B) { benchmarkMode(b, DHXCP) }
func BenchmarkTLS(b *testing.B)   { benchmarkMode(b, TLS) }

// recordLayer is the record layer of one mode on its own: dhxcp's
// ChaCha20-Poly1305 records, or tls's plain records (TLS itself seals
// those; crypto/tls is measured in BenchmarkTLS).
type recordLayer struct {
	name   string
	sealer func() sealer
	// rewind sets an opening sealer back to the first record's nonce, so
	// one sealed record can be opened again and again.
	rewind func(sealer)
}

var recordLayers = []recordLayer{
	{"dhxcp", func() sealer { return fuzzSealer() }, func(s sealer) { s.(*chachaSealer).n = 0 }},
	{"tls", func() sealer { return plain{} }, func(sealer) {}},
}

// sealStep returns one write of a full-size record's payload into a
// discarding transport.
func (l recordLayer) sealStep(t testing.TB) func() {
	r := newRecords(byteTransport{bytes.NewReader(nil)}, l.sealer(), l.sealer())
	payload := make([]byte, maxPayload)
	return func() {
		if _, err := r.Write(payload); err != nil {
			t.Fatal(err)
		}
	}
}

// openStep returns one read of a full-size record: the same sealed record
// each time, rewound.
func (l recordLayer) openStep(t testing.TB) func() {
	var sealed bytes.Buffer
	w := newRecords(bufTransport{byteTransport{bytes.NewReader(nil)}, &sealed}, l.sealer(), l.sealer())
	if _, err := w.Write(make([]byte, maxPayload)); err != nil {
		t.Fatal(err)
	}
	src := bytes.NewReader(sealed.Bytes())
	r := newRecords(byteTransport{src}, l.sealer(), l.sealer())
	got := make([]byte, maxPayload)
	return func() {
		src.Reset(sealed.Bytes())
		l.rewind(r.in)
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkRecordSeal and BenchmarkRecordOpen measure the record layer
// alone, one full-size record per op.
func BenchmarkRecordSeal(b *testing.B) { benchRecords(b, recordLayer.sealStep) }
func BenchmarkRecordOpen(b *testing.B) { benchRecords(b, recordLayer.openStep) }

func benchRecords(b *testing.B, step func(recordLayer, testing.TB) func()) {
	for _, l := range recordLayers {
		b.Run(l.name, func(b *testing.B) {
			do := step(l, b)
			b.SetBytes(maxPayload)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				do()
			}
		})
	}
}
