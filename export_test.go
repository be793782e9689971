package connet

import (
	"context"
	"fmt"
	"time"

	"github.com/p2pconnet/connet/internal/netpath"
)

// Hooks for the tests of package connet_test, which make hostile peers out
// of real clients.

// StallStream opens a stream from c to the client to for endpoint, on c's
// path to it that is relayed or direct as asked (waiting a few seconds for
// one to come up), and writes the first byte of a stream request whose
// rest never comes. A relayed stream has passed its hello and handshake.
func (c *Client) StallStream(ctx context.Context, to *Client, endpoint string, relayed bool) (netpath.Stream, error) {
	pp, err := c.pathTo(ctx, to, relayed)
	if err != nil {
		return nil, err
	}
	s, err := pp.OpenStream(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	if _, err := s.Write([]byte{0}); err != nil {
		s.Reset()
		return nil, err
	}
	return s, nil
}

// pathTo waits, for at most 10 s, for a usable path to the client to that
// is relayed or direct as asked.
func (c *Client) pathTo(ctx context.Context, to *Client, relayed bool) (netpath.Path, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		changed := c.registry.Changed()
		if p := c.registry.Get(to.id.ID); p != nil {
			st, _ := p.State()
			for _, pp := range st.UsablePaths() {
				if pp.Kind().Relayed() == relayed {
					return pp, nil
				}
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("no path (relayed: %v) to %s: %w", relayed, to.id.ID, context.Cause(ctx))
		}
	}
}
