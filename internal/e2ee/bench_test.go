package e2ee

import (
	"io"
	"testing"
)

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
	b.ResetTimer()
	for range b.N {
		if _, err := sa.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDHXCP(b *testing.B) { benchmarkMode(b, DHXCP) }
func BenchmarkTLS(b *testing.B)   { benchmarkMode(b, TLS) }
