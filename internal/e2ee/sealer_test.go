package e2ee

import (
	"bytes"
	"testing"

	"github.com/flynn/noise"
)

// TestChachaSealerIsNoise: records sealed by chachaSealer are byte for byte
// what noise.CipherState seals with the same key and counter, and each side
// opens the other's, so peers running the CipherState-based records still
// understand this one.
func TestChachaSealerIsNoise(t *testing.T) {
	mine, theirs := fuzzSealer(), noise.UnsafeNewCipherState(dhxcpSuite, fuzzKey, 0)
	opener, theirOpener := fuzzSealer(), noise.UnsafeNewCipherState(dhxcpSuite, fuzzKey, 0)
	for i, msg := range [][]byte{[]byte("first"), {}, bytes.Repeat([]byte{7}, maxPayload)} {
		a, err := mine.seal(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := theirs.Encrypt(nil, nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("record %d: chachaSealer and noise seal differently", i)
		}
		if got, err := theirOpener.Decrypt(nil, nil, a); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("record %d: noise opens chachaSealer's record: %v", i, err)
		}
		if got, err := opener.open(nil, b); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("record %d: chachaSealer opens noise's record: %v", i, err)
		}
	}
	// A record opened out of order (the counter is now 3) fails.
	stale, _ := fuzzSealer().seal(nil, []byte("replayed"))
	if _, err := opener.open(nil, stale); err == nil {
		t.Fatal("a replayed record opened")
	}
}
