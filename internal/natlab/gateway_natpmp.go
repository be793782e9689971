package natlab

import (
	"encoding/binary"
	"errors"
)

// NAT-PMP messages (RFC 6886), the server's side: the lab gateway decodes
// requests and encodes responses. Clients use a library.
const (
	pmpVersion      = 0
	pmpOpAddress    = 0
	pmpOpMapUDP     = 1
	pmpOpMapTCP     = 2
	pmpResponseBit  = 128
	pmpSuccess      = 0
	pmpUnsuppVer    = 1
	pmpRefused      = 2
	pmpNoResources  = 4
	pmpUnsuppOpcode = 5
)

// pmpRequest is a decoded NAT-PMP request.
type pmpRequest struct {
	op            uint8
	internalPort  uint16
	suggestedPort uint16
	lifetime      uint32
}

var errPMPShort = errors.New("natpmp: short request")

// parsePMPRequest decodes a request of version 0 (RFC 6886 sections 3.2
// and 3.3); the caller answers other versions with UNSUPP_VERSION.
func parsePMPRequest(b []byte) (pmpRequest, error) {
	if len(b) < 2 {
		return pmpRequest{}, errPMPShort
	}
	r := pmpRequest{op: b[1]}
	if r.op == pmpOpMapUDP || r.op == pmpOpMapTCP {
		if len(b) < 12 {
			return r, errPMPShort
		}
		r.internalPort = binary.BigEndian.Uint16(b[4:6])
		r.suggestedPort = binary.BigEndian.Uint16(b[6:8])
		r.lifetime = binary.BigEndian.Uint32(b[8:12])
	}
	return r, nil
}

// pmpHeader is the 8 bytes that start every response: version, opcode +
// 128, result code, seconds since start of epoch (RFC 6886 section 3.5).
func pmpHeader(op uint8, result uint16, epoch uint32, size int) []byte {
	b := make([]byte, size)
	b[0] = pmpVersion
	b[1] = op | pmpResponseBit
	binary.BigEndian.PutUint16(b[2:4], result)
	binary.BigEndian.PutUint32(b[4:8], epoch)
	return b
}

// pmpAddressResponse answers opcode 0 with the external IPv4 address
// (RFC 6886 section 3.2): 12 bytes.
func pmpAddressResponse(result uint16, epoch uint32, ext [4]byte) []byte {
	b := pmpHeader(pmpOpAddress, result, epoch, 12)
	copy(b[8:12], ext[:])
	return b
}

// pmpMapResponse answers a mapping request (RFC 6886 section 3.3): 16
// bytes with the internal port, the mapped external port and the granted
// lifetime.
func pmpMapResponse(op uint8, result uint16, epoch uint32, internal, external uint16, lifetime uint32) []byte {
	b := pmpHeader(op, result, epoch, 16)
	binary.BigEndian.PutUint16(b[8:10], internal)
	binary.BigEndian.PutUint16(b[10:12], external)
	binary.BigEndian.PutUint32(b[12:16], lifetime)
	return b
}

// pmpErrorResponse answers a request that fails before its opcode is
// understood: the header alone (RFC 6886 section 3.5 lets an error
// response be the 8-byte header, and a version this server does not speak
// is answered with version 0 and UNSUPP_VERSION).
func pmpErrorResponse(op uint8, result uint16, epoch uint32) []byte {
	return pmpHeader(op&^pmpResponseBit, result, epoch, 8)
}

// pcpAnnounce is PCP's restart announcement (RFC 6887 section 14.1.3): a
// response to the ANNOUNCE opcode (0) with the new epoch, 24 bytes.
func pcpAnnounce(epoch uint32) []byte {
	b := make([]byte, 24)
	b[0] = 2
	b[1] = 0 | pmpResponseBit
	binary.BigEndian.PutUint32(b[8:12], epoch)
	return b
}
