// Package e2ee encrypts relayed streams end to end, so that a relay, which
// must be able to forward them, cannot read or undetectably alter them.
// Both modes authenticate each side with its pinned identity certificate
// and end each direction with an authenticated end-of-stream record, so
// truncation is never mistaken for a clean end. See
// docs/relay-encryption.md for the construction.
package e2ee

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/netpath"
)

// Encryption names a mode, as in the config's relay-encryptions.
type Encryption string

const (
	None  Encryption = "none"
	TLS   Encryption = "tls"
	DHXCP Encryption = "dhxcp"
)

// preference is the order Choose prefers: the most mature first.
var preference = []Encryption{TLS, DHXCP, None}

// ErrMismatch reports two ends that allow no encryption in common.
var ErrMismatch = errors.New("e2ee: no relay encryption allowed by both ends")

// ParseEncryption accepts the config spelling.
func ParseEncryption(s string) (Encryption, error) {
	e := Encryption(s)
	if !slices.Contains(preference, e) {
		return "", fmt.Errorf("e2ee: unknown relay encryption %q (want none, tls or dhxcp)", s)
	}
	return e, nil
}

// Choose picks what a source and a destination use: the first of tls,
// dhxcp, none that both allow.
func Choose(local, remote []Encryption) (Encryption, error) {
	for _, e := range preference {
		if slices.Contains(local, e) && slices.Contains(remote, e) {
			return e, nil
		}
	}
	return "", fmt.Errorf("%w: this end allows %v, the other %v", ErrMismatch, local, remote)
}

// Wrap secures s with e. The initiator is the source, which opened the
// stream; local is this end's identity and peerDER the certificate the
// other end must prove. None returns s as it is. On failure s is reset.
func Wrap(ctx context.Context, s netpath.Stream, e Encryption, initiator bool, local *identity.Identity, peerDER []byte) (netpath.Stream, error) {
	var out netpath.Stream
	var err error
	switch e {
	case None:
		return s, nil
	case TLS:
		out, err = wrapTLS(ctx, s, initiator, local, peerDER)
	case DHXCP:
		out, err = wrapDHXCP(ctx, s, initiator, local, peerDER)
	default:
		err = fmt.Errorf("e2ee: unknown relay encryption %q", e)
	}
	if err != nil {
		s.Reset()
		// A handshake cut short by ctx fails with an I/O timeout from the
		// stream's deadline; name the context so callers can tell.
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		return nil, fmt.Errorf("e2ee %s: %w", e, err)
	}
	return out, nil
}
