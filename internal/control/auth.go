package control

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/netip"
	"regexp"
)

// Token is one accepted client token and what it may do. Only the hash of
// the token is kept.
type Token struct {
	hash [32]byte
	// AllowAddr, if set, must accept the client's address.
	AllowAddr func(netip.Addr) bool
	// NameMatches, if set, must match every endpoint name.
	NameMatches *regexp.Regexp
	// Role, if set ("destination" or "source"), is the only role allowed.
	Role string
}

// NewToken hashes secret; the secret itself is not retained.
func NewToken(secret string) Token { return Token{hash: sha256.Sum256([]byte(secret))} }

// match finds the token whose secret is given, comparing every hash in
// constant time so timing does not tell how much of a guess was right.
func match(tokens []Token, secret string) (int, bool) {
	h := sha256.Sum256([]byte(secret))
	found := -1
	for i := range tokens {
		if subtle.ConstantTimeCompare(tokens[i].hash[:], h[:]) == 1 && found < 0 {
			found = i
		}
	}
	return found, found >= 0
}
