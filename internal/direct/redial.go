package direct

import (
	"context"
	"net/netip"
	"slices"

	"github.com/p2pconnet/connet/internal/peer"
)

// untilCandidatesChange returns a context for dialing the candidates
// dialed that ends with ctx, or as soon as the peer's candidates differ
// from them: a new candidate (say, a port mapping the peer just made) is
// dialed at once, instead of after the handshakes to the old ones time
// out. The caller must call the cancel function, which returns once the
// goroutine that watches the candidates has ended.
func untilCandidatesChange(ctx context.Context, p *peer.Peer, dialed []netip.AddrPort) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			st, changed := p.State()
			if !slices.Equal(st.Info.Candidates, dialed) {
				cancel()
				return
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ctx, func() { cancel(); <-done }
}
