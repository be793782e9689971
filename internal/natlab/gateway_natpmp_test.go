package natlab

import (
	"bytes"
	"testing"
)

// The NAT-PMP messages of RFC 6886 section 3, byte by byte.

func TestPMPParseMapRequest(t *testing.T) {
	// Section 3.3: version 0, opcode 1 (UDP), reserved, internal port
	// 19104, suggested external port 19104, lifetime 7200 (the
	// recommended two hours).
	b := []byte{0, 1, 0, 0, 0x4a, 0xa0, 0x4a, 0xa0, 0, 0, 0x1c, 0x20}
	r, err := parsePMPRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if r != (pmpRequest{op: pmpOpMapUDP, internalPort: 19104, suggestedPort: 19104, lifetime: 7200}) {
		t.Fatalf("parsed %+v", r)
	}
	if _, err := parsePMPRequest(b[:11]); err == nil {
		t.Fatal("a short mapping request was accepted")
	}
	// Section 3.2: the external address request is two bytes.
	if r, err := parsePMPRequest([]byte{0, 0}); err != nil || r.op != pmpOpAddress {
		t.Fatalf("address request: %+v, %v", r, err)
	}
}

func TestPMPResponses(t *testing.T) {
	// Section 3.2: version 0, opcode 128, result 0, epoch, address.
	got := pmpAddressResponse(pmpSuccess, 42, [4]byte{203, 0, 113, 20})
	want := []byte{0, 128, 0, 0, 0, 0, 0, 42, 203, 0, 113, 20}
	if !bytes.Equal(got, want) {
		t.Fatalf("address response %v, want %v", got, want)
	}
	// Section 3.3: opcode 129 for UDP, internal port, mapped external
	// port, granted lifetime.
	got = pmpMapResponse(pmpOpMapUDP, pmpSuccess, 42, 19104, 50000, 3600)
	want = []byte{0, 129, 0, 0, 0, 0, 0, 42, 0x4a, 0xa0, 0xc3, 0x50, 0, 0, 0x0e, 0x10}
	if !bytes.Equal(got, want) {
		t.Fatalf("map response %v, want %v", got, want)
	}
	// Section 3.5: an unsupported version is answered with result 1 in
	// a version 0 header.
	got = pmpErrorResponse(1, pmpUnsuppVer, 42)
	want = []byte{0, 129, 0, 1, 0, 0, 0, 42}
	if !bytes.Equal(got, want) {
		t.Fatalf("error response %v, want %v", got, want)
	}
}
