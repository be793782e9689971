package relayclient

import (
	"context"
	"net"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/liveness"
	"github.com/p2pconnet/connet/internal/path"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
)

// Path reaches one peer through one relay.
type Path struct {
	Relay  identity.ID
	Peer   identity.ID
	conn   *quic.Conn
	health *liveness.Health
}

// Stale tells whether the relay went silent.
func (p *Path) Stale() bool { return p.health.Stale() }

var _ path.Path = (*Path)(nil)

func (p *Path) Kind() path.Kind       { return path.Relay }
func (p *Path) RemoteAddr() net.Addr  { return p.conn.RemoteAddr() }
func (p *Path) Done() <-chan struct{} { return p.conn.Context().Done() }

// RTT counts the relay twice: the peer's leg is not measured here, and the
// relay's own leg is the best estimate of it.
func (p *Path) RTT() time.Duration { return 2 * p.conn.ConnectionStats().SmoothedRTT }

// Close does nothing: the relay connection is shared by every peer.
func (p *Path) Close() error { return nil }

// OpenStream asks the relay for a stream to the peer.
func (p *Path) OpenStream(ctx context.Context) (path.Stream, error) {
	s, err := p.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	st := path.WrapQUIC(s)
	deadline := time.Now().Add(tunnel.HeaderTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.SetDeadline(deadline)
	if err := wire.Write(s, &pb.RelayConnect{Peer: p.Peer[:]}); err != nil {
		st.Reset()
		return nil, err
	}
	var reply pb.RelayReply
	if err := wire.Read(s, &reply, wire.MaxStreamHeader); err != nil {
		st.Reset()
		return nil, err
	}
	if err := wire.FromPB(reply.GetError()); err != nil {
		st.Reset()
		return nil, err
	}
	_ = s.SetDeadline(time.Time{})
	return st, nil
}
