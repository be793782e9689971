package direct

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"

	"github.com/p2pconnet/connet/internal/identity"
)

// A punch probe is a small UDP datagram that peers send each other to open
// NAT mappings when one of them is behind a symmetric NAT (see punch.go).
// It shares the client's socket with QUIC, so its first byte has the two
// top bits clear: quic-go hands such packets to ReadNonQUICPacket instead
// of parsing them (every QUIC packet has the fixed bit 0x40 set).
//
// Layout: 4 bytes of magic, the sender's identity (32 bytes), and a tag of
// 16 bytes: HMAC-SHA256 keyed with the receiver's punch secret over the
// magic, the sender and the receiver. Only the receiver's peers learn its
// secret (from the control server), so only they can make probes it
// accepts; a probe names its sender, so the receiver knows which peer's
// punch it belongs to.
var probeMagic = [4]byte{0x00, 'c', 'n', 'p'}

const (
	probeTagLen = 16
	probeLen    = len(probeMagic) + len(identity.ID{}) + probeTagLen
)

// makeProbe builds the probe from sender to receiver, tagged with the
// receiver's secret.
func makeProbe(from, to identity.ID, toSecret []byte) []byte {
	b := make([]byte, 0, probeLen)
	b = append(b, probeMagic[:]...)
	b = append(b, from[:]...)
	return append(b, probeTag(from, to, toSecret)...)
}

func probeTag(from, to identity.ID, secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(probeMagic[:])
	m.Write(from[:])
	m.Write(to[:])
	return m.Sum(nil)[:probeTagLen]
}

// IsProbe tells whether b has the shape of a punch probe (tests count
// them with it).
func IsProbe(b []byte) bool {
	return len(b) == probeLen && bytes.Equal(b[:len(probeMagic)], probeMagic[:])
}

// probeSender returns who claims to have sent probe b; check it with
// probeValid.
func probeSender(b []byte) (identity.ID, bool) {
	if !IsProbe(b) {
		return identity.ID{}, false
	}
	var from identity.ID
	copy(from[:], b[len(probeMagic):])
	return from, true
}

// probeValid tells whether b is a probe from `from` to `self`, tagged with
// self's secret.
func probeValid(b []byte, from, self identity.ID, secret []byte) bool {
	got, ok := probeSender(b)
	if !ok || got != from || len(secret) == 0 {
		return false
	}
	return hmac.Equal(b[len(b)-probeTagLen:], probeTag(from, self, secret))
}
