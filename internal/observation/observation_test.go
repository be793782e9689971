package observation

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/netip"
	"testing"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"google.golang.org/protobuf/proto"
)

func newIdentity(t testing.TB) *identity.Identity {
	t.Helper()
	id, err := identity.Generate("test")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestVerify: what a relay signs verifies with its certificate, for the
// client it names; any change, another relay's certificate or another
// client is refused with ErrInvalid.
func TestVerify(t *testing.T) {
	relay, other := newIdentity(t), newIdentity(t)
	client := identity.ID{7}
	at := netip.MustParseAddrPort("198.51.100.1:4000")
	so, err := Sign(relay, client, netip.MustParseAddrPort("[::ffff:198.51.100.1]:4000"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Verify(relay.DER(), so, client); err != nil || got != at {
		t.Fatalf("Verify: %v, %v; want %v (unmapped)", got, err, at)
	}
	flip := func(b []byte) []byte {
		c := append([]byte(nil), b...)
		c[len(c)-1] ^= 1
		return c
	}
	forged, err := Sign(other, client, at)
	if err != nil {
		t.Fatal(err)
	}
	forged.RelayId = relay.ID[:]
	junk := []byte("junk")
	junkID := identity.IDOf(junk)
	for name, tc := range map[string]struct {
		cert   []byte
		so     *pb.SignedObservation
		client identity.ID
	}{
		"another client":      {relay.DER(), so, identity.ID{8}},
		"another relay's":     {other.DER(), so, client},
		"signed by another":   {relay.DER(), forged, client},
		"tampered":            {relay.DER(), &pb.SignedObservation{RelayId: so.RelayId, Observation: flip(so.Observation), Signature: so.Signature}, client},
		"bad signature":       {relay.DER(), &pb.SignedObservation{RelayId: so.RelayId, Observation: so.Observation, Signature: flip(so.Signature)}, client},
		"short relay id":      {relay.DER(), &pb.SignedObservation{RelayId: so.RelayId[:3], Observation: so.Observation, Signature: so.Signature}, client},
		"empty":               {relay.DER(), &pb.SignedObservation{}, client},
		"nil":                 {relay.DER(), nil, client},
		"not a certificate":   {junk, &pb.SignedObservation{RelayId: junkID[:]}, client},
		"no address, signed":  {relay.DER(), signRaw(t, relay, &pb.Observation{ClientId: client[:]}), client},
		"short id, signed":    {relay.DER(), signRaw(t, relay, &pb.Observation{ClientId: client[:5], Observed: so2addr(at)}), client},
		"not protobuf signed": {relay.DER(), signBytes(t, relay, []byte{0xff, 0xff}), client},
	} {
		if got, err := Verify(tc.cert, tc.so, tc.client); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, %v; want ErrInvalid", name, got, err)
		}
	}
}

// TestSignNeedsEd25519: a relay identity with another kind of key cannot
// sign (identities are Ed25519; a hand-made one might not be).
func TestSignNeedsEd25519(t *testing.T) {
	cert, err := testcert.New("relay")
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert.TLS.PrivateKey = key
	id := &identity.Identity{Cert: cert.TLS, ID: identity.IDOf(cert.TLS.Certificate[0])}
	if _, err := Sign(id, identity.ID{1}, netip.MustParseAddrPort("192.0.2.1:1")); err == nil {
		t.Fatal("signed with a key that is not Ed25519")
	}
}

func so2addr(a netip.AddrPort) *pb.AddrPort {
	return &pb.AddrPort{Ip: a.Addr().AsSlice(), Port: uint32(a.Port())}
}

func signRaw(t testing.TB, relay *identity.Identity, o *pb.Observation) *pb.SignedObservation {
	t.Helper()
	b, err := proto.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return signBytes(t, relay, b)
}

func signBytes(t testing.TB, relay *identity.Identity, b []byte) *pb.SignedObservation {
	t.Helper()
	return &pb.SignedObservation{RelayId: relay.ID[:], Observation: b, Signature: ed25519.Sign(relay.Cert.PrivateKey.(ed25519.PrivateKey), signed(b))}
}
