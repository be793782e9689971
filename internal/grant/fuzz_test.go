package grant

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// FuzzVerify feeds arbitrary grant bytes and signatures to Verify: it must
// never panic, and must accept nothing the key did not sign.
func FuzzVerify(f *testing.F) {
	s, err := LoadOrCreateSigner(filepath.Join(f.TempDir(), "k"))
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	good, err := s.Sign(identity.ID{1}, []*pb.Endpoint{{Name: "web", Role: pb.Role_ROLE_SOURCE}}, now)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good.Grant, good.Signature)
	f.Add([]byte{}, []byte{})
	f.Add(good.Grant, make([]byte, 64))
	f.Fuzz(func(t *testing.T, grantBytes, sig []byte) {
		g, err := Verify(s.PublicKey(), &pb.SignedGrant{Grant: grantBytes, Signature: sig}, now)
		if err == nil && (string(grantBytes) != string(good.Grant) || string(sig) != string(good.Signature)) {
			t.Fatalf("accepted a grant the key did not sign: %+v", g)
		}
	})
}
