package control

import (
	"crypto/ed25519"
	"path/filepath"

	"github.com/p2pconnet/connet/internal/grant"
	"github.com/p2pconnet/connet/internal/store"
	"github.com/quic-go/quic-go"
)

// Open is New with the server's keys kept in storeDir: its stateless
// reset key and the key that signs grants, so that clients' connections
// and the grants relays hold survive a restart.
func Open(storeDir string, cfg Config) (*Server, error) {
	key, err := store.LoadOrCreateKey(filepath.Join(storeDir, "stateless-reset.key"))
	if err != nil {
		return nil, err
	}
	resetKey := quic.StatelessResetKey(key)
	cfg.StatelessResetKey = &resetKey
	if cfg.Grants, err = grant.LoadOrCreateSigner(filepath.Join(storeDir, "grant.key")); err != nil {
		return nil, err
	}
	return New(cfg)
}

// GrantKey is the public key of the grants the server signs, which relays
// check them with.
func (s *Server) GrantKey() ed25519.PublicKey { return s.cfg.Grants.PublicKey() }
