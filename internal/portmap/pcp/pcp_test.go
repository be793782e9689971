package pcp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// unhex decodes a hex dump written with spaces between fields.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var nonce = [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

// The request of RFC 6887 Figure 2 (common header) followed by Figure 9
// (MAP opcode): version 2, R=0 opcode 1, reserved, lifetime, client
// address as IPv4-mapped IPv6; nonce, protocol 17, reserved, internal
// port, suggested external port, suggested external address (the IPv4
// "any" ::ffff:0.0.0.0 of section 11.1).
const mapRequestHex = `
02 01 0000
00001c20
00000000 00000000 0000ffff c0000202
0102030405060708090a0b0c
11 000000
4aa0 4aa0
00000000 00000000 0000ffff 00000000`

func TestMapRequestLayout(t *testing.T) {
	req := MapRequest{
		Lifetime:          7200,
		Client:            netip.MustParseAddr("192.0.2.2"),
		Nonce:             nonce,
		InternalPort:      19104,
		SuggestedPort:     19104,
		SuggestedExternal: netip.IPv4Unspecified(),
	}
	want := unhex(t, mapRequestHex)
	got := req.Marshal()
	if !bytes.Equal(got, want) {
		t.Fatalf("request\n got %x\nwant %x", got, want)
	}
	if len(got) != 60 {
		t.Fatalf("MAP request of %d bytes, RFC 6887 gives 24 + 36", len(got))
	}
	back, err := ParseMapRequest(want)
	if err != nil {
		t.Fatal(err)
	}
	req.SuggestedExternal = netip.Addr{} // "any" reads back as none
	if back != req {
		t.Fatalf("parsed %+v, want %+v", back, req)
	}
}

// The response of RFC 6887 Figure 3 (R=1, result code, lifetime, epoch
// time, 96 reserved bits) followed by Figure 10 (MAP with the assigned
// external port and address).
const mapResponseHex = `
02 81 00 00
00000e10
0000002a
00000000 00000000 00000000
0102030405060708090a0b0c
11 000000
4aa0 c350
00000000 00000000 0000ffff cb007114`

func TestMapResponseLayout(t *testing.T) {
	resp := MapResponse{
		Result:       Success,
		Lifetime:     3600,
		Epoch:        42,
		Nonce:        nonce,
		InternalPort: 19104,
		ExternalPort: 50000,
		External:     netip.MustParseAddr("203.0.113.20"),
	}
	want := unhex(t, mapResponseHex)
	if got := resp.Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("response\n got %x\nwant %x", got, want)
	}
	back, err := ParseMapResponse(want)
	if err != nil {
		t.Fatal(err)
	}
	if back != resp {
		t.Fatalf("parsed %+v, want %+v", back, resp)
	}
}

func TestErrorResponseCarriesHeader(t *testing.T) {
	// An error response: result ADDRESS_MISMATCH, lifetime 30 (how long
	// the error holds), epoch 7.
	b := unhex(t, `02 81 00 0c 0000001e 00000007 000000000000000000000000`)
	r, err := ParseMapResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Result != AddressMismatch || r.Lifetime != 30 || r.Epoch != 7 || ResultText(r.Result) != "ADDRESS_MISMATCH" {
		t.Fatalf("got %+v (%s)", r, ResultText(r.Result))
	}
}

func TestParseRejects(t *testing.T) {
	good := unhex(t, mapRequestHex)
	natpmp := []byte{0, 1, 0, 0, 0x4a, 0xa0, 0x4a, 0xa0, 0, 0, 0x1c, 0x20}
	if _, err := ParseMapRequest(natpmp); !errors.Is(err, ErrVersion) {
		t.Errorf("NAT-PMP request: %v, want ErrVersion", err)
	}
	peer := append([]byte(nil), good...)
	peer[1] = 2 // PEER
	if _, err := ParseMapRequest(peer); !errors.Is(err, ErrOpcode) {
		t.Errorf("PEER request: %v, want ErrOpcode", err)
	}
	tcp := append([]byte(nil), good...)
	tcp[36] = 6
	if _, err := ParseMapRequest(tcp); err == nil {
		t.Error("TCP mapping accepted")
	}
	if _, err := ParseMapRequest(good[:59]); err == nil {
		t.Error("short request accepted")
	}
	if _, err := ParseMapResponse([]byte{0, 0x80, 0, 1, 0, 0, 0, 0}); !errors.Is(err, ErrVersion) {
		t.Errorf("NAT-PMP UNSUPP_VERSION answer: %v, want ErrVersion", err)
	}
}
