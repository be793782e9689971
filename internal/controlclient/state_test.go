package controlclient

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// TestDecodeState: a server update becomes peers, the NAT and refusals
// keyed by endpoint; a peer whose certificate is not its id is logged and
// left out, and the others still arrive.
func TestDecodeState(t *testing.T) {
	good, err := identity.Generate("good")
	if err != nil {
		t.Fatal(err)
	}
	other, err := identity.Generate("other")
	if err != nil {
		t.Fatal(err)
	}
	cand := netip.MustParseAddrPort("192.0.2.1:4000")
	st := &pb.ServerState{
		NatMapping: pb.NatMapping_NAT_MAPPING_PER_DESTINATION,
		Peers: []*pb.Peer{
			{
				Id: good.ID[:], Certificate: good.DER(), Metadata: "m",
				Candidates: []*pb.AddrPort{wire.FromAddrPort(cand)},
				NatMapping: pb.NatMapping_NAT_MAPPING_INDEPENDENT,
				Endpoints:  []*pb.PeerEndpoint{{Name: "web", Role: pb.Role_ROLE_SOURCE, Route: pb.Route_ROUTE_RELAY, RelayEncryptions: []string{"tls"}}},
			},
			{Id: other.ID[:], Certificate: good.DER()}, // not its certificate
		},
		Refused: []*pb.EndpointStatus{{Name: "db", Role: pb.Role_ROLE_DESTINATION, Error: wire.ToPB(wire.Errorf(pb.ErrorCode_ERROR_CODE_ENDPOINT_FORBIDDEN, "not yours"))}},
	}
	var log bytes.Buffer
	got := decodeState(st, slog.New(slog.NewTextHandler(&log, nil)))

	if got.NAT != peer.NATPerDestination {
		t.Errorf("NAT %q, want per-destination", got.NAT)
	}
	if len(got.Peers) != 1 {
		t.Fatalf("%d peers, want only the well-formed one", len(got.Peers))
	}
	p := got.Peers[0]
	if p.ID != good.ID || p.Metadata != "m" || p.NAT != peer.NATIndependent || len(p.Candidates) != 1 || p.Candidates[0] != cand {
		t.Errorf("peer decoded as %+v", p)
	}
	want := peer.Endpoint{Name: "web", Role: peer.Source, Route: netpath.RouteRelay, RelayEncryptions: []string{"tls"}}
	if len(p.Endpoints) != 1 || p.Endpoints[0].Name != want.Name || p.Endpoints[0].Role != want.Role || p.Endpoints[0].Route != want.Route || p.Endpoints[0].RelayEncryptions[0] != "tls" {
		t.Errorf("endpoints %+v, want %+v", p.Endpoints, want)
	}
	if !strings.Contains(log.String(), "ignoring malformed peer") {
		t.Errorf("the malformed peer was not logged: %q", log.String())
	}
	refusal := got.Refused[peer.EndpointKey{Name: "db", Role: peer.Destination}]
	var werr *wire.Error
	if !errors.As(refusal, &werr) || werr.Code != pb.ErrorCode_ERROR_CODE_ENDPOINT_FORBIDDEN || len(got.Refused) != 1 {
		t.Errorf("refusals %v, want db's, forbidden", got.Refused)
	}
}
