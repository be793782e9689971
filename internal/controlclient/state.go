package controlclient

import (
	"fmt"
	"log/slog"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// State is the control server's latest word, decoded for the client.
type State struct {
	// Peers are the peers the server names; a malformed one is logged and
	// left out.
	Peers []peer.Info
	// NAT is how this client's NAT maps, as the server worked it out.
	NAT peer.NAT
	// Refused says why the server refused each endpoint it refused.
	Refused map[peer.EndpointKey]error
	// Relays and Grant are for the relay manager, which takes them as the
	// server sent them.
	Relays []*pb.Relay
	Grant  *pb.SignedGrant
}

// decodeState decodes a server update, logging the peers it leaves out.
func decodeState(st *pb.ServerState, logger *slog.Logger) State {
	out := State{
		Peers:   make([]peer.Info, 0, len(st.GetPeers())),
		NAT:     natFromPB(st.GetNatMapping()),
		Refused: map[peer.EndpointKey]error{},
		Relays:  st.GetRelays(),
		Grant:   st.GetGrant(),
	}
	for _, p := range st.GetPeers() {
		info, err := peerInfo(p)
		if err != nil {
			logger.Warn("ignoring malformed peer from control server", "err", err)
			continue
		}
		out.Peers = append(out.Peers, info)
	}
	for _, r := range st.GetRefused() {
		key := peer.EndpointKey{Name: r.GetName(), Role: roleFromPB(r.GetRole())}
		out.Refused[key] = fmt.Errorf("refused by control server: %w", errorFromPB(r.GetError()))
	}
	return out
}

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
			Name: e.GetName(), Role: roleFromPB(e.GetRole()), Route: netpath.Route(wire.RouteName(e.GetRoute())),
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
