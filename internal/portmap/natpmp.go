package portmap

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/p2pconnet/connet/internal/network"
)

// natPMP speaks NAT-PMP (RFC 6886) through the client's network: two
// requests, each a few bytes, on PCP's port and resend schedule (see
// gatewayRPC).
type natPMP struct {
	net       network.Network
	gw, local netip.Addr
}

func newNATPMP(n network.Network, gw, local netip.Addr) *natPMP {
	return &natPMP{net: n, gw: gw, local: local}
}

// NAT-PMP opcodes (RFC 6886 sections 3.2 and 3.3); an answer's is the
// request's plus natPMPAnswer.
const (
	natPMPExternalAddr = 0
	natPMPMapUDP       = 1
	natPMPAnswer       = 128
)

func (n *natPMP) mapPort(ctx context.Context, port, ext uint16, lifetime time.Duration) (result, error) {
	// The mapping answer carries no address: ask for it first.
	addr, err := n.call(ctx, []byte{0, natPMPExternalAddr}, 12)
	if err != nil {
		return result{}, err
	}
	ans, err := n.call(ctx, mapRequest(port, ext, lifetime), 16)
	if err != nil {
		return result{}, err
	}
	// RFC 6886 section 3.3: the answer names the internal port asked for.
	if got := binary.BigEndian.Uint16(ans[8:10]); got != port {
		return result{}, fmt.Errorf("%w: an answer for internal port %d, not %d", errBadAnswer, got, port)
	}
	return result{
		external: netip.AddrPortFrom(netip.AddrFrom4([4]byte(addr[8:12])), binary.BigEndian.Uint16(ans[10:12])),
		lifetime: time.Duration(binary.BigEndian.Uint32(ans[12:16])) * time.Second,
		epoch:    binary.BigEndian.Uint32(ans[4:8]),
		hasEpoch: true,
	}, nil
}

// unmap deletes the mapping: a request with lifetime 0 and external port 0
// (RFC 6886 section 3.4).
func (n *natPMP) unmap(ctx context.Context, port, _ uint16) error {
	_, err := n.call(ctx, mapRequest(port, 0, 0), 16)
	return err
}

// mapRequest asks for a UDP mapping of port, suggesting ext.
func mapRequest(port, ext uint16, lifetime time.Duration) []byte {
	msg := make([]byte, 12)
	msg[1] = natPMPMapUDP
	binary.BigEndian.PutUint16(msg[4:6], port)
	binary.BigEndian.PutUint16(msg[6:8], ext)
	binary.BigEndian.PutUint32(msg[8:12], uint32(lifetime/time.Second))
	return msg
}

// call sends msg and returns the gateway's answer, which must be size
// bytes long, of version 0, with result success and msg's opcode.
func (n *natPMP) call(ctx context.Context, msg []byte, size int) ([]byte, error) {
	var ans []byte
	err := gatewayRPC(ctx, n.net, netip.AddrPortFrom(n.gw, natPMPPort), n.local,
		func(netip.Addr) []byte { return msg },
		func(b []byte) (bool, error) {
			if err := checkNATPMP(b, msg[1]+natPMPAnswer, size); err != nil {
				return false, err
			}
			ans = append([]byte(nil), b...)
			return true, nil
		})
	return ans, err
}

// natPMPPort is where gateways answer NAT-PMP (and PCP).
const natPMPPort = 5351

// checkNATPMP checks the header of an answer b: version 0, result 0
// (success), opcode op, and length size.
func checkNATPMP(b []byte, op byte, size int) error {
	switch {
	case len(b) < 4:
		return fmt.Errorf("nat-pmp: an answer of %d bytes, want %d", len(b), size)
	case b[0] == 2:
		return fmt.Errorf("nat-pmp: the gateway answered in PCP (version 2)")
	case b[0] != 0:
		return fmt.Errorf("nat-pmp: unknown version %d", b[0])
	case binary.BigEndian.Uint16(b[2:4]) != 0:
		return fmt.Errorf("nat-pmp: result %d (%s)", binary.BigEndian.Uint16(b[2:4]), natPMPResult(binary.BigEndian.Uint16(b[2:4])))
	case b[1] != op:
		return fmt.Errorf("nat-pmp: opcode %d, want %d", b[1], op)
	case len(b) != size:
		return fmt.Errorf("nat-pmp: an answer of %d bytes, want %d", len(b), size)
	}
	return nil
}

// natPMPResult names a result code (RFC 6886 section 3.5).
func natPMPResult(code uint16) string {
	switch code {
	case 1:
		return "unsupported version"
	case 2:
		return "not authorized or refused"
	case 3:
		return "network failure"
	case 4:
		return "out of resources"
	case 5:
		return "unsupported opcode"
	}
	return "unknown"
}
