// Package grant signs and checks what a client may do at relays. The
// control server signs a grant for each client (its identity, its endpoints
// and an expiry); a relay admits the client on the grant alone, so relays
// need no call to the control server per connection and keep working while
// it restarts.
package grant

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/store"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"google.golang.org/protobuf/proto"
)

// Lifetime is how long a grant is valid. The control server sends a fresh
// one well before that (Refresh) and whenever the client's endpoints change.
const (
	Lifetime = time.Hour
	Refresh  = Lifetime / 3
)

var (
	// ErrInvalid reports a grant whose signature does not verify or whose
	// content is malformed.
	ErrInvalid = errors.New("grant: invalid")
	// ErrExpired reports a grant past its expiry.
	ErrExpired = errors.New("grant: expired")
)

// Signer signs grants with the control server's key.
type Signer struct {
	key ed25519.PrivateKey
}

// LoadOrCreateSigner keeps the signing key's seed in file, so grants stay
// valid across control server restarts.
func LoadOrCreateSigner(file string) (*Signer, error) {
	seed, err := store.LoadOrCreateKey(file)
	if err != nil {
		return nil, err
	}
	return &Signer{key: ed25519.NewKeyFromSeed(seed[:])}, nil
}

// PublicKey is what relays verify grants with.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Sign issues a grant for client, valid for Lifetime from now.
func (s *Signer) Sign(client identity.ID, endpoints []*pb.Endpoint, now time.Time) (*pb.SignedGrant, error) {
	g := &pb.Grant{ClientId: client[:], Endpoints: endpoints, ExpiresUnix: now.Add(Lifetime).Unix()}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(g)
	if err != nil {
		return nil, fmt.Errorf("grant: %w", err)
	}
	return &pb.SignedGrant{Grant: b, Signature: ed25519.Sign(s.key, b)}, nil
}

// Grant is a verified grant.
type Grant struct {
	Client    identity.ID
	Endpoints []*pb.Endpoint
	Expires   time.Time
}

// Allows tells whether the grant lets its client use endpoint name in role.
func (g *Grant) Allows(name string, role pb.Role) bool {
	for _, e := range g.Endpoints {
		if e.GetName() == name && e.GetRole() == role {
			return true
		}
	}
	return false
}

// Verify checks sg against key and the time now.
func Verify(key ed25519.PublicKey, sg *pb.SignedGrant, now time.Time) (*Grant, error) {
	if len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: no verification key", ErrInvalid)
	}
	if sg == nil || !ed25519.Verify(key, sg.GetGrant(), sg.GetSignature()) {
		return nil, fmt.Errorf("%w: bad signature", ErrInvalid)
	}
	var g pb.Grant
	if err := proto.Unmarshal(sg.GetGrant(), &g); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	id, err := identity.ParseID(g.GetClientId())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	out := &Grant{Client: id, Endpoints: g.GetEndpoints(), Expires: time.Unix(g.GetExpiresUnix(), 0)}
	if !now.Before(out.Expires) {
		return nil, fmt.Errorf("%w at %v", ErrExpired, out.Expires)
	}
	return out, nil
}
