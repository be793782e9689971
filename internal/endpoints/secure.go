package endpoints

import (
	"context"
	"fmt"

	"github.com/p2pconnet/connet/internal/e2ee"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// The table is the client's end-to-end encryption policy for relayed
// streams: the relay manager calls SecureOutgoing and SecureIncoming.

// SecureOutgoing starts a relayed stream to a peer for a source endpoint:
// it picks the encryption both ends allow, says so in the clear hello, and
// runs the handshake.
func (t *Table) SecureOutgoing(ctx context.Context, id identity.ID, endpoint string, s netpath.Stream) (netpath.Stream, error) {
	p := t.cfg.Registry.Get(id)
	if p == nil {
		s.Reset()
		return nil, fmt.Errorf("%w for %q: peer %s is gone", ErrNoDestination, endpoint, id)
	}
	src := t.Local(endpoint, peer.Source)
	st, _ := p.State()
	pe, ok := st.Endpoint(endpoint, peer.Destination)
	if src == nil || !ok {
		s.Reset()
		return nil, fmt.Errorf("%w for %q", ErrNoDestination, endpoint)
	}
	enc, err := e2ee.Choose(src.Encryptions, encryptionsFrom(pe.RelayEncryptions))
	if err != nil {
		s.Reset()
		return nil, fmt.Errorf("relay encryption with destination %s: %w", p.ID, err)
	}
	if err := wire.Write(s, &pb.RelayedHello{Endpoint: endpoint, Encryption: string(enc)}); err != nil {
		s.Reset()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, tunnel.HeaderTimeout)
	defer cancel()
	return e2ee.Wrap(ctx, s, enc, true, t.cfg.Identity, st.Info.Cert)
}

// SecureIncoming checks the hello of a relayed stream from a peer against
// our destination and what the control server says the peer allows, then
// runs the handshake.
func (t *Table) SecureIncoming(id identity.ID, hello *pb.RelayedHello, s netpath.Stream) (netpath.Stream, error) {
	p := t.cfg.Registry.Get(id)
	if p == nil {
		return nil, fmt.Errorf("unknown peer %s", id)
	}
	dst := t.Local(hello.GetEndpoint(), peer.Destination)
	st, _ := p.State()
	pe, ok := st.Endpoint(hello.GetEndpoint(), peer.Source)
	if dst == nil || !ok {
		return nil, fmt.Errorf("no destination %q for this peer", hello.GetEndpoint())
	}
	enc, err := e2ee.ParseEncryption(hello.GetEncryption())
	if err != nil {
		return nil, err
	}
	// The source chose; the choice must be what the same rule gives from
	// both lists, so a relay cannot talk the ends down to a weaker one.
	want, err := e2ee.Choose(dst.Encryptions, encryptionsFrom(pe.RelayEncryptions))
	if err != nil {
		return nil, err
	}
	if enc != want {
		return nil, fmt.Errorf("source asked for relay encryption %q, both ends agree on %q", enc, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), tunnel.HeaderTimeout)
	defer cancel()
	return e2ee.Wrap(ctx, s, enc, false, t.cfg.Identity, st.Info.Cert)
}

// encryptionsFrom reads a peer's relay encryptions.
func encryptionsFrom(names []string) []e2ee.Encryption {
	if len(names) == 0 { // a peer that states nothing allows none only
		return []e2ee.Encryption{e2ee.None}
	}
	return Encryptions(names)
}

// pathEncryption names how a connection of e with peer id on p is
// encrypted end to end: "quic" on a direct path (its own TLS 1.3), else
// the relay encryption both ends agree on, as SecureOutgoing and
// SecureIncoming choose it.
func (e *Endpoint) pathEncryption(id identity.ID, p netpath.Path) string {
	if p.Kind().Direct() {
		return "quic"
	}
	pp := e.table.cfg.Registry.Get(id)
	if pp == nil {
		return "unknown"
	}
	st, _ := pp.State()
	pe, _ := st.Endpoint(e.Key.Name, e.Key.Role.Opposite())
	enc, err := e2ee.Choose(e.Encryptions, encryptionsFrom(pe.RelayEncryptions))
	if err != nil {
		return "unknown"
	}
	return string(enc)
}

// warnMismatches logs, once per pairing, peers whose relay encryptions
// leave nothing in common with ours: relayed connections between us will
// fail, on both sides, and each side says so when it learns of the other.
// infos is every peer the control server names, so the pairings remembered
// are rebuilt from it: those of peers that left (or that now agree with
// us) are dropped rather than kept for the client's lifetime.
func (t *Table) warnMismatches(infos []peer.Info) {
	next := map[mismatchKey]bool{}
	for _, info := range infos {
		for _, pe := range info.Endpoints {
			local := t.matching(pe)
			if local == nil || !local.Route.Allows(netpath.Relay) || !pe.Route.Allows(netpath.Relay) {
				continue
			}
			_, err := e2ee.Choose(local.Encryptions, encryptionsFrom(pe.RelayEncryptions))
			if err == nil {
				continue
			}
			key := mismatchKey{info.ID.String(), pe.Name}
			t.mu.Lock()
			warned := t.mismatches[key]
			t.mu.Unlock()
			if !warned {
				t.cfg.Logger.Error("relayed connections with this peer will fail", "peer", info.ID, "endpoint", pe.Name, "err", err)
			}
			next[key] = true
		}
	}
	t.mu.Lock()
	t.mismatches = next
	t.mu.Unlock()
}

type mismatchKey struct{ peer, endpoint string }
