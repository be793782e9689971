package control

import (
	"regexp"

	"github.com/p2pconnet/connet/internal/restrict"
)

// TokenRestriction limits what the clients of one token may do.
type TokenRestriction struct {
	IP restrict.IP
	// NameMatches, if set, must match every endpoint name.
	NameMatches *regexp.Regexp
	// Role, if set, is the only role allowed: "destination" or "source".
	Role string
}

// Tokens makes the tokens of secrets, each held to the restriction at its
// index, if there is one.
func Tokens(secrets []string, rs []TokenRestriction) []Token {
	tokens := make([]Token, len(secrets))
	for i, secret := range secrets {
		tokens[i] = NewToken(secret)
		if i >= len(rs) {
			continue
		}
		if !rs[i].IP.Empty() {
			tokens[i].AllowAddr = rs[i].IP.Allowed
		}
		tokens[i].NameMatches, tokens[i].Role = rs[i].NameMatches, rs[i].Role
	}
	return tokens
}

// RelayTokens makes the tokens of relays' secrets, each held to the
// address restriction at its index, if there is one.
func RelayTokens(secrets []string, ips []restrict.IP) []Token {
	rs := make([]TokenRestriction, len(ips))
	for i, ip := range ips {
		rs[i].IP = ip
	}
	return Tokens(secrets, rs)
}
