package control

import (
	"net/netip"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/observation"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// How a client's NAT maps is the server's call, not the client's: peers
// spray probes at the address of a client whose NAT maps per destination
// (see package direct), so a client's word on it would let it aim them.
// The server compares where it sees the client's socket with where relays
// saw it, each relay's observation signed by the relay (see package
// observation). A client reaching the server over TCP has no UDP mapping
// here: its NAT stays unknown, and its address is neither a probe target
// nor a direct candidate.

// classifyNAT tells how a client's NAT maps from where the server sees
// its socket (control) and where relays saw the same socket (relays). A
// different port at the same public address means a mapping per
// destination; the same address and port, a mapping independent of it.
// Observations at other public addresses say nothing (the path to that
// relay may avoid the NAT).
func classifyNAT(control netip.AddrPort, relays []netip.AddrPort) pb.NatMapping {
	if !control.IsValid() {
		return pb.NatMapping_NAT_MAPPING_UNKNOWN
	}
	nat := pb.NatMapping_NAT_MAPPING_UNKNOWN
	for _, o := range relays {
		if o.Addr().Unmap() != control.Addr().Unmap() {
			continue
		}
		if o.Port() != control.Port() {
			return pb.NatMapping_NAT_MAPPING_PER_DESTINATION
		}
		nat = pb.NatMapping_NAT_MAPPING_INDEPENDENT
	}
	return nat
}

// natLocked is how o's NAT maps, as far as the server can tell.
func natLocked(o *client) pb.NatMapping {
	if !o.overUDP {
		return pb.NatMapping_NAT_MAPPING_UNKNOWN
	}
	return classifyNAT(o.observed, o.punch.relayObserved)
}

// observationChecker checks the relay observations one client sends. A
// client repeats them with every state it sends, so each is verified
// once: the checker remembers the ones that passed in the last state.
type observationChecker struct {
	r      *registry
	client identity.ID
	passed map[string]netip.AddrPort
}

// check returns the addresses the observations vouch for, leaving out
// those of relays the server does not offer (any more: one may just have
// left). An observation that does not verify is a protocol violation: a
// client only passes on what relays gave it.
func (oc *observationChecker) check(sos []*pb.SignedObservation) ([]netip.AddrPort, error) {
	if len(sos) > maxRelays {
		return nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_LIMIT, "%d relay observations (at most %d)", len(sos), maxRelays)
	}
	passed := make(map[string]netip.AddrPort, len(sos))
	var out []netip.AddrPort
	for _, so := range sos {
		key := string(so.GetRelayId()) + "\x00" + string(so.GetSignature()) + "\x00" + string(so.GetObservation())
		a, ok := oc.passed[key]
		if !ok {
			rid, err := identity.ParseID(so.GetRelayId())
			if err != nil {
				return nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "relay observation: %v", err)
			}
			cert := oc.r.relayCert(rid)
			if cert == nil {
				continue
			}
			if a, err = observation.Verify(cert, so, oc.client); err != nil {
				return nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "relay observation: %v", err)
			}
		}
		passed[key] = a
		out = append(out, a)
	}
	oc.passed = passed
	return out, nil
}
