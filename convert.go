package connet

import (
	"fmt"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// peerInfo validates a peer as the control server describes it.
func peerInfo(p *pb.Peer) (peer.Info, error) {
	id, err := identity.ParseID(p.GetId())
	if err != nil {
		return peer.Info{}, err
	}
	if identity.IDOf(p.GetCertificate()) != id {
		return peer.Info{}, fmt.Errorf("peer %s: certificate does not match its id", id)
	}
	info := peer.Info{ID: id, Cert: p.GetCertificate(), Metadata: p.GetMetadata()}
	for _, a := range p.GetCandidates() {
		ap, err := wire.ToAddrPort(a)
		if err != nil {
			return peer.Info{}, fmt.Errorf("peer %s: candidate: %w", id, err)
		}
		info.Candidates = append(info.Candidates, ap)
	}
	if p.GetObserved() != nil {
		obs, err := wire.ToAddrPort(p.GetObserved())
		if err != nil {
			return peer.Info{}, fmt.Errorf("peer %s: observed: %w", id, err)
		}
		info.Observed = obs
	}
	info.NAT = natFromPB(p.GetNatMapping())
	info.PunchSecret = p.GetPunchSecret()
	for _, e := range p.GetEndpoints() {
		info.Endpoints = append(info.Endpoints, peer.Endpoint{
			Name: e.GetName(), Role: roleFromPB(e.GetRole()), Route: routeFromPB(e.GetRoute()),
			RelayEncryptions: e.GetRelayEncryptions(),
		})
	}
	for _, r := range p.GetRelays() {
		rid, err := identity.ParseID(r)
		if err != nil {
			return peer.Info{}, fmt.Errorf("peer %s: relay: %w", id, err)
		}
		info.Relays = append(info.Relays, rid)
	}
	return info, nil
}

func roleFromPB(r pb.Role) peer.Role { return peer.Role(wire.RoleName(r)) }

func routeFromPB(r pb.Route) netpath.Route { return netpath.Route(wire.RouteName(r)) }

func routeToPB(r netpath.Route) pb.Route { return wire.RouteFromName(string(r)) }

func errorFromPB(e *pb.Error) error {
	if err := wire.FromPB(e); err != nil {
		return err
	}
	return wire.Errorf(pb.ErrorCode_ERROR_CODE_UNSPECIFIED, "no reason given")
}

func natFromPB(m pb.NatMapping) peer.NAT {
	switch m {
	case pb.NatMapping_NAT_MAPPING_INDEPENDENT:
		return peer.NATIndependent
	case pb.NatMapping_NAT_MAPPING_PER_DESTINATION:
		return peer.NATPerDestination
	}
	return peer.NATUnknown
}
