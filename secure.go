package connet

import (
	"context"
	"fmt"

	"github.com/p2pconnet/connet/internal/e2ee"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/relayclient"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// securer is the client's end-to-end encryption policy for relayed
// streams, as the relay manager uses it.
type securer Client

var _ relayclient.Securer = (*securer)(nil)

// SecureOutgoing starts a relayed stream to a peer for a source endpoint:
// it picks the encryption both ends allow, says so in the clear hello, and
// runs the handshake.
func (c *securer) SecureOutgoing(ctx context.Context, id identity.ID, endpoint string, s netpath.Stream) (netpath.Stream, error) {
	p := c.registry.Get(id)
	if p == nil {
		s.Reset()
		return nil, fmt.Errorf("%w for %q: peer %s is gone", ErrNoDestination, endpoint, id)
	}
	c.mu.Lock()
	src := c.sources[endpoint]
	c.mu.Unlock()
	st, _ := p.State()
	pe, ok := st.Endpoint(endpoint, peer.Destination)
	if src == nil || !ok {
		s.Reset()
		return nil, fmt.Errorf("%w for %q", ErrNoDestination, endpoint)
	}
	enc, err := e2ee.Choose(encryptionsOf(src.cfg.RelayEncryptions), encryptionsFrom(pe.RelayEncryptions))
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
	return e2ee.Wrap(ctx, s, enc, true, c.id, st.Info.Cert)
}

// SecureIncoming checks the hello of a relayed stream from a peer against
// our destination and what the control server says the peer allows, then
// runs the handshake.
func (c *securer) SecureIncoming(id identity.ID, hello *pb.RelayedHello, s netpath.Stream) (netpath.Stream, error) {
	p := c.registry.Get(id)
	if p == nil {
		return nil, fmt.Errorf("unknown peer %s", id)
	}
	c.mu.Lock()
	dst := c.destinations[hello.GetEndpoint()]
	c.mu.Unlock()
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
	want, err := e2ee.Choose(encryptionsOf(dst.cfg.RelayEncryptions), encryptionsFrom(pe.RelayEncryptions))
	if err != nil {
		return nil, err
	}
	if enc != want {
		return nil, fmt.Errorf("source asked for relay encryption %q, both ends agree on %q", enc, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), tunnel.HeaderTimeout)
	defer cancel()
	return e2ee.Wrap(ctx, s, enc, false, c.id, st.Info.Cert)
}

func encryptionsOf(es []RelayEncryption) []e2ee.Encryption {
	out := make([]e2ee.Encryption, len(es))
	for i, e := range es {
		out[i] = e2ee.Encryption(e)
	}
	return out
}

func encryptionsFrom(names []string) []e2ee.Encryption {
	if len(names) == 0 { // a peer that states nothing allows none only
		return []e2ee.Encryption{e2ee.None}
	}
	out := make([]e2ee.Encryption, len(names))
	for i, n := range names {
		out[i] = e2ee.Encryption(n)
	}
	return out
}

// warnMismatches logs, once per pairing, peers whose relay encryptions
// leave nothing in common with ours: relayed connections between us will
// fail, on both sides, and each side says so when it learns of the other.
// infos is every peer the control server names, so the pairings remembered
// are rebuilt from it: those of peers that left (or that now agree with
// us) are dropped rather than kept for the client's lifetime.
func (c *Client) warnMismatches(infos []peer.Info) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[mismatchKey]bool{}
	for _, info := range infos {
		for _, e := range info.Endpoints {
			var local []RelayEncryption
			var route netpath.Route
			switch e.Role {
			case peer.Source:
				if d := c.destinations[e.Name]; d != nil {
					local, route = d.cfg.RelayEncryptions, d.cfg.Route
				}
			case peer.Destination:
				if s := c.sources[e.Name]; s != nil {
					local, route = s.cfg.RelayEncryptions, s.cfg.Route
				}
			}
			if local == nil || !route.Allows(netpath.Relay) || !e.Route.Allows(netpath.Relay) {
				continue
			}
			_, err := e2ee.Choose(encryptionsOf(local), encryptionsFrom(e.RelayEncryptions))
			if err == nil {
				continue
			}
			key := mismatchKey{info.ID.String(), e.Name}
			if !c.mismatches[key] {
				c.cfg.logger.Error("relayed connections with this peer will fail", "peer", info.ID, "endpoint", e.Name, "err", err)
			}
			next[key] = true
		}
	}
	c.mismatches = next
}

type mismatchKey struct{ peer, endpoint string }
