package wire_test

import (
	"strings"
	"testing"

	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"google.golang.org/protobuf/proto"
)

// worstEndpoints are MaxEndpoints endpoints as large as the limits allow.
func worstEndpoints() []*pb.Endpoint {
	eps := make([]*pb.Endpoint, wire.MaxEndpoints)
	for i := range eps {
		eps[i] = &pb.Endpoint{
			Name:             strings.Repeat("n", wire.MaxNameLen),
			Role:             pb.Role_ROLE_DESTINATION,
			Route:            pb.Route_ROUTE_RELAY,
			RelayEncryptions: []string{"none", "dhxcp", "tls"},
		}
	}
	return eps
}

// TestLimitsFitCaps: the largest grant and hello the announcement limits
// allow fit the caps they are read with, so honest clients are never
// refused by the framing.
func TestLimitsFitCaps(t *testing.T) {
	g, err := proto.Marshal(&pb.Grant{ClientId: make([]byte, 32), Endpoints: worstEndpoints(), ExpiresUnix: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	if n := proto.Size(&pb.SignedGrant{Grant: g, Signature: make([]byte, 64)}); n > wire.MaxGrant {
		t.Fatalf("the largest grant is %d bytes, cap %d", n, wire.MaxGrant)
	}
	hello := &pb.Hello{Token: strings.Repeat("t", 1024), Metadata: strings.Repeat("m", wire.MaxMetadata), BuildVersion: strings.Repeat("v", 256)}
	if n := proto.Size(hello); n > wire.MaxHello {
		t.Fatalf("a hello with a 1 KiB token and the largest metadata is %d bytes, cap %d", n, wire.MaxHello)
	}
	// A peer entry (certificate, metadata, 65 candidates, 64 relays, every
	// endpoint, its observed address, NAT kind and punch secret) must leave
	// room for many peers in one state.
	peer := &pb.Peer{Id: make([]byte, 32), Certificate: make([]byte, 4<<10), Metadata: strings.Repeat("m", wire.MaxMetadata),
		Observed: &pb.AddrPort{Ip: make([]byte, 16), Port: 65535}, NatMapping: pb.NatMapping_NAT_MAPPING_PER_DESTINATION,
		PunchSecret: make([]byte, wire.PunchSecretLen)}
	for range 65 {
		peer.Candidates = append(peer.Candidates, &pb.AddrPort{Ip: make([]byte, 16), Port: 65535})
	}
	for range 64 {
		peer.Relays = append(peer.Relays, make([]byte, 32))
	}
	for _, e := range worstEndpoints() {
		peer.Endpoints = append(peer.Endpoints, &pb.PeerEndpoint{Name: e.Name, Role: e.Role, Route: e.Route, RelayEncryptions: e.RelayEncryptions})
	}
	if n := proto.Size(peer); n*32 > wire.MaxControlMessage {
		t.Fatalf("the largest peer entry is %d bytes; 32 of them do not fit %d", n, wire.MaxControlMessage)
	}
}
