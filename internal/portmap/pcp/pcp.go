// Package pcp encodes and decodes the Port Control Protocol's MAP opcode
// (RFC 6887), for the client in package portmap and for the lab gateway
// that tests it. No maintained Go library implements PCP, and only MAP is
// needed, so this stays small: the common header and the MAP payload,
// without options.
package pcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Port is the PCP server's UDP port (RFC 6887 section 19.1), shared with
// NAT-PMP.
const Port = 5351

// Version is the PCP version number; NAT-PMP is version 0.
const Version = 2

// OpMap is the MAP opcode; a response sets the high bit (the R bit).
const (
	OpMap    = 1
	rBit     = 0x80
	protoUDP = 17
)

// Sizes of the messages this package handles (RFC 6887 sections 7 and 11).
const (
	headerLen   = 24
	mapLen      = 36
	RequestLen  = headerLen + mapLen
	ResponseLen = headerLen + mapLen
	// MaxLen is the largest PCP message (RFC 6887 section 7).
	MaxLen = 1100
)

// Result codes (RFC 6887 section 7.4).
const (
	Success          = 0
	UnsuppVersion    = 1
	NotAuthorized    = 2
	MalformedRequest = 3
	UnsuppOpcode     = 4
	UnsuppProtocol   = 9
	NoResources      = 8
	AddressMismatch  = 12
)

// MapRequest is a MAP request for a UDP port. A Lifetime of 0 deletes the
// mapping.
type MapRequest struct {
	Lifetime uint32
	// Client is the address the client sends from, as the server must see
	// it (else ADDRESS_MISMATCH).
	Client netip.Addr
	// Nonce ties the responses to this client's mapping.
	Nonce             [12]byte
	InternalPort      uint16
	SuggestedPort     uint16
	SuggestedExternal netip.Addr // zero for "any"
}

// MapResponse is the server's answer to a MAP request.
type MapResponse struct {
	Result   uint8
	Lifetime uint32
	// Epoch is the server's epoch time in seconds (RFC 6887 section 8.5).
	Epoch        uint32
	Nonce        [12]byte
	InternalPort uint16
	ExternalPort uint16
	External     netip.Addr
}

// Marshal encodes the request.
func (r MapRequest) Marshal() []byte {
	b := make([]byte, RequestLen)
	b[0] = Version
	b[1] = OpMap
	binary.BigEndian.PutUint32(b[4:8], r.Lifetime)
	putAddr(b[8:24], r.Client)
	copy(b[24:36], r.Nonce[:])
	b[36] = protoUDP
	binary.BigEndian.PutUint16(b[40:42], r.InternalPort)
	binary.BigEndian.PutUint16(b[42:44], r.SuggestedPort)
	putAddr(b[44:60], r.SuggestedExternal)
	return b
}

// ErrVersion reports a message of another version: a NAT-PMP (version 0)
// message, or a PCP version this package does not speak.
var ErrVersion = errors.New("pcp: unsupported version")

// ErrOpcode reports a valid header with an opcode other than MAP.
var ErrOpcode = errors.New("pcp: unsupported opcode")

// ParseMapRequest decodes a MAP request for UDP. Options after the MAP
// payload are ignored, as RFC 6887 allows for optional ones.
func ParseMapRequest(b []byte) (MapRequest, error) {
	var r MapRequest
	if len(b) < 2 {
		return r, errors.New("pcp: short request")
	}
	if b[0] != Version {
		return r, ErrVersion
	}
	if b[1]&rBit != 0 {
		return r, errors.New("pcp: a response, not a request")
	}
	if b[1] != OpMap {
		return r, ErrOpcode
	}
	if len(b) < RequestLen || len(b) > MaxLen || len(b)%4 != 0 {
		return r, fmt.Errorf("pcp: MAP request of %d bytes", len(b))
	}
	if b[36] != protoUDP {
		return r, fmt.Errorf("pcp: protocol %d, want UDP", b[36])
	}
	r.Lifetime = binary.BigEndian.Uint32(b[4:8])
	r.Client = getAddr(b[8:24])
	copy(r.Nonce[:], b[24:36])
	r.InternalPort = binary.BigEndian.Uint16(b[40:42])
	r.SuggestedPort = binary.BigEndian.Uint16(b[42:44])
	r.SuggestedExternal = getAddr(b[44:60])
	return r, nil
}

// Marshal encodes the response.
func (r MapResponse) Marshal() []byte {
	b := make([]byte, ResponseLen)
	b[0] = Version
	b[1] = OpMap | rBit
	b[3] = r.Result
	binary.BigEndian.PutUint32(b[4:8], r.Lifetime)
	binary.BigEndian.PutUint32(b[8:12], r.Epoch)
	copy(b[24:36], r.Nonce[:])
	b[36] = protoUDP
	binary.BigEndian.PutUint16(b[40:42], r.InternalPort)
	binary.BigEndian.PutUint16(b[42:44], r.ExternalPort)
	putAddr(b[44:60], r.External)
	return b
}

// ParseMapResponse decodes a response to a MAP request. A response with a
// result other than Success carries only the header reliably.
func ParseMapResponse(b []byte) (MapResponse, error) {
	var r MapResponse
	if len(b) < 4 {
		return r, errors.New("pcp: short response")
	}
	if b[0] != Version {
		// A NAT-PMP-only server answers a version it does not know with
		// its own header (RFC 6886 section 3.5).
		return r, ErrVersion
	}
	if b[1] != OpMap|rBit {
		return r, fmt.Errorf("pcp: opcode byte %#x, want a MAP response", b[1])
	}
	if len(b) < headerLen {
		return r, fmt.Errorf("pcp: response of %d bytes", len(b))
	}
	r.Result = b[3]
	r.Lifetime = binary.BigEndian.Uint32(b[4:8])
	r.Epoch = binary.BigEndian.Uint32(b[8:12])
	if r.Result != Success {
		return r, nil
	}
	if len(b) < ResponseLen {
		return r, fmt.Errorf("pcp: MAP response of %d bytes", len(b))
	}
	if b[36] != protoUDP {
		return r, fmt.Errorf("pcp: MAP response for protocol %d, want UDP", b[36])
	}
	copy(r.Nonce[:], b[24:36])
	r.InternalPort = binary.BigEndian.Uint16(b[40:42])
	r.ExternalPort = binary.BigEndian.Uint16(b[42:44])
	r.External = getAddr(b[44:60])
	return r, nil
}

// putAddr writes a as the 128-bit field PCP uses for every address: IPv4
// as an IPv4-mapped IPv6 address (so 0.0.0.0 is ::ffff:0:0, "any IPv4
// address" in a suggestion), the zero Addr as all zeros.
func putAddr(b []byte, a netip.Addr) {
	if !a.IsValid() {
		return
	}
	a16 := a.As16() // IPv4 comes out IPv4-mapped
	copy(b, a16[:])
}

// getAddr reads a 128-bit address field, unmapping IPv4; all zeros (and
// ::ffff:0.0.0.0) give the zero Addr.
func getAddr(b []byte) netip.Addr {
	a := netip.AddrFrom16([16]byte(b)).Unmap()
	if a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

// ResultText names a result code for logs and errors.
func ResultText(code uint8) string {
	names := map[uint8]string{
		Success: "SUCCESS", UnsuppVersion: "UNSUPP_VERSION", NotAuthorized: "NOT_AUTHORIZED",
		MalformedRequest: "MALFORMED_REQUEST", UnsuppOpcode: "UNSUPP_OPCODE", 5: "UNSUPP_OPTION",
		6: "MALFORMED_OPTION", 7: "NETWORK_FAILURE", NoResources: "NO_RESOURCES",
		UnsuppProtocol: "UNSUPP_PROTOCOL", 10: "USER_EX_QUOTA", 11: "CANNOT_PROVIDE_EXTERNAL",
		AddressMismatch: "ADDRESS_MISMATCH", 13: "EXCESSIVE_REMOTE_PEERS",
	}
	if n, ok := names[code]; ok {
		return n
	}
	return fmt.Sprintf("result %d", code)
}
