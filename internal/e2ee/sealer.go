package e2ee

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"

	"github.com/flynn/noise"
	"golang.org/x/crypto/chacha20poly1305"
)

// chachaSealer is one direction's ChaCha20-Poly1305 state after a dhxcp
// handshake; its nonce counter makes replayed, reordered or dropped records
// fail to open. It produces exactly what noise.CipherState's Encrypt would
// (the Noise ChaChaPoly nonce: 4 zero bytes, then the counter
// little-endian), but keeps the nonce in itself: CipherState builds it in
// a fresh 12-byte slice per record, one allocation per 64 KiB on the data
// path.
type chachaSealer struct {
	aead  cipher.AEAD
	n     uint64
	nonce [chacha20poly1305.NonceSize]byte
}

// newChachaSealer takes over the key and counter of a CipherState from a
// completed handshake; cs must not be used afterwards.
func newChachaSealer(cs *noise.CipherState) (*chachaSealer, error) {
	key := cs.UnsafeKey()
	aead, err := chacha20poly1305.New(key[:])
	if err != nil {
		return nil, fmt.Errorf("record cipher: %w", err)
	}
	return &chachaSealer{aead: aead, n: cs.Nonce()}, nil
}

// next returns the nonce of the next record, or fails once the counter is
// spent (as CipherState does past noise.MaxNonce).
func (c *chachaSealer) next() ([]byte, error) {
	if c.n > noise.MaxNonce {
		return nil, noise.ErrMaxNonce
	}
	binary.LittleEndian.PutUint64(c.nonce[4:], c.n)
	return c.nonce[:], nil
}

func (c *chachaSealer) seal(dst, plaintext []byte) ([]byte, error) {
	nonce, err := c.next()
	if err != nil {
		return nil, err
	}
	c.n++
	return c.aead.Seal(dst, nonce, plaintext, nil), nil
}

// open advances the counter only for a record that authenticates, as
// CipherState does; a failure ends the stream anyway.
func (c *chachaSealer) open(dst, body []byte) ([]byte, error) {
	nonce, err := c.next()
	if err != nil {
		return nil, err
	}
	out, err := c.aead.Open(dst, nonce, body, nil)
	if err != nil {
		return nil, err
	}
	c.n++
	return out, nil
}

func (c *chachaSealer) overhead() int { return aeadOverhead }
