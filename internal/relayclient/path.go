package relayclient

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// Securer runs the end-to-end encryption of relayed streams. The client
// implements it, because the choice depends on its endpoints' settings and
// on what the control server says the peer allows.
type Securer interface {
	// SecureOutgoing tells the peer, in the clear, which endpoint and
	// encryption follow on s, then runs the handshake.
	SecureOutgoing(ctx context.Context, peer identity.ID, endpoint string, s netpath.Stream) (netpath.Stream, error)
	// SecureIncoming checks the clear hello of a stream the peer opened
	// and runs the handshake.
	SecureIncoming(peer identity.ID, hello *pb.RelayedHello, s netpath.Stream) (netpath.Stream, error)
}

// Path reaches one peer through one relay. It lives on the peer like a
// direct path: the manager adds it while both ends are at the relay and
// ends it when either leaves.
type Path struct {
	Relay  identity.ID
	Peer   identity.ID
	rc     *relayConn
	secure Securer

	endOnce sync.Once
	done    chan struct{}
}

var _ netpath.Path = (*Path)(nil)

func newPath(relay, peer identity.ID, rc *relayConn, secure Securer) *Path {
	return &Path{Relay: relay, Peer: peer, rc: rc, secure: secure, done: make(chan struct{})}
}

// Stale tells whether the relay went silent.
func (p *Path) Stale() bool { return p.rc.health.Stale() }

// Kind is relay-tcp when this client reaches the relay over TCP.
func (p *Path) Kind() netpath.Kind {
	if p.rc.conn.Transport() != muxconn.QUIC {
		return netpath.RelayTCP
	}
	return netpath.Relay
}

func (p *Path) RemoteAddr() net.Addr  { return p.rc.conn.RemoteAddr() }
func (p *Path) Done() <-chan struct{} { return p.done }
func (p *Path) String() string        { return string(p.Kind()) + " " + p.RemoteAddr().String() }

// LogValue logs the path as its kind, the relay's address and the RTT.
func (p *Path) LogValue() slog.Value { return netpath.LogValue(p) }

// RTT counts the relay twice: the peer's leg is not measured here, and the
// relay's own leg is the best estimate of it.
func (p *Path) RTT() time.Duration { return 2 * p.rc.conn.RTT() }

// Close ends the path (not the relay connection, which every peer at the
// relay shares).
func (p *Path) Close() error {
	p.endOnce.Do(func() { close(p.done) })
	return nil
}

func (p *Path) ended() bool {
	select {
	case <-p.done:
		return true
	default:
		return p.rc.conn.Context().Err() != nil
	}
}

// OpenStream asks the relay for a stream to the peer, then secures it end
// to end for the endpoint.
func (p *Path) OpenStream(ctx context.Context, endpoint string) (netpath.Stream, error) {
	s, err := p.rc.conn.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	st := s
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
	return p.secure.SecureOutgoing(ctx, p.Peer, endpoint, st)
}
