package observation

import (
	"net/netip"
	"testing"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"google.golang.org/protobuf/proto"
)

// FuzzVerify feeds arbitrary bytes to Verify as the SignedObservation a
// client sends the control server: it must never panic, and must accept
// nothing the relay did not sign.
func FuzzVerify(f *testing.F) {
	relay := newIdentity(f)
	client := identity.ID{1}
	good, err := Sign(relay, client, netip.MustParseAddrPort("198.51.100.1:4000"))
	if err != nil {
		f.Fatal(err)
	}
	goodBytes, err := proto.Marshal(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(goodBytes)
	f.Add([]byte{})
	unsigned, err := proto.Marshal(&pb.SignedObservation{RelayId: relay.ID[:], Observation: good.Observation, Signature: make([]byte, 64)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(unsigned)
	f.Fuzz(func(t *testing.T, b []byte) {
		var so pb.SignedObservation
		if proto.Unmarshal(b, &so) != nil {
			return
		}
		got, err := Verify(relay.DER(), &so, client)
		if err == nil && (string(so.GetObservation()) != string(good.Observation) || string(so.GetSignature()) != string(good.Signature)) {
			t.Fatalf("accepted an observation the relay did not sign: %v", got)
		}
	})
}
