package grant

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

func TestSignVerify(t *testing.T) {
	file := filepath.Join(t.TempDir(), "grant.key")
	s, err := LoadOrCreateSigner(file)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	client := identity.ID{7}
	eps := []*pb.Endpoint{{Name: "web", Role: pb.Role_ROLE_SOURCE}}
	sg, err := s.Sign(client, eps, now)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Verify(s.PublicKey(), sg, now)
	if err != nil {
		t.Fatal(err)
	}
	if g.Client != client || !g.Allows("web", pb.Role_ROLE_SOURCE) || g.Allows("web", pb.Role_ROLE_DESTINATION) {
		t.Fatalf("verified grant %+v does not say what was signed", g)
	}

	// The key survives a restart: a grant signed before verifies after.
	s2, err := LoadOrCreateSigner(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(s2.PublicKey(), sg, now); err != nil {
		t.Fatalf("grant from before the restart: %v", err)
	}

	if _, err := Verify(s.PublicKey(), sg, now.Add(Lifetime)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired grant: %v", err)
	}
	tampered := &pb.SignedGrant{Grant: append([]byte(nil), sg.Grant...), Signature: sg.Signature}
	tampered.Grant[len(tampered.Grant)-1] ^= 1
	if _, err := Verify(s.PublicKey(), tampered, now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("tampered grant: %v", err)
	}
	other, _ := LoadOrCreateSigner(filepath.Join(t.TempDir(), "other.key"))
	if _, err := Verify(other.PublicKey(), sg, now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("grant checked with another key: %v", err)
	}
	if _, err := Verify(s.PublicKey(), nil, now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("missing grant: %v", err)
	}
}
