package netpath

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pconnet/connet/internal/liveness"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/quic-go/quic-go"
)

// StreamAbort is the application error code for streams abandoned before
// their end; peers treat it as a reset connection.
const StreamAbort = muxconn.StreamAbort

// QUIC is a Path made of a QUIC connection straight to the peer.
type QUIC struct {
	Conn *quic.Conn
	kind Kind
	// active counts streams not yet closed; retired paths take no new
	// streams and close once it drops to zero.
	active  atomic.Int64
	retired atomic.Bool
	health  *liveness.Health
}

// Stale tells whether the connection went silent.
func (p *QUIC) Stale() bool { return p.health.Stale() }

// retireCheck is how often a retired path looks whether its last stream
// has ended.
const retireCheck = time.Second

// Retire stops new streams on the path and closes it once the streams it
// carries have ended (or the connection dies first). The goroutine that
// waits for that runs in wg, so its owner can wait for it.
func (p *QUIC) Retire(wg *sync.WaitGroup) {
	if p.retired.Swap(true) {
		return
	}
	wg.Go(func() {
		t := time.NewTicker(retireCheck)
		defer t.Stop()
		for p.active.Load() > 0 {
			select {
			case <-t.C:
			case <-p.Done():
				return
			}
		}
		_ = p.Conn.CloseWithError(0, "redundant")
	})
}

// Retired tells whether Retire was called.
func (p *QUIC) Retired() bool { return p.retired.Load() }

// codeStale closes a peer connection that went silent.
const codeStale quic.ApplicationErrorCode = 2

// NewQUIC wraps conn as a path of the given kind. A connection that goes
// silent is closed after tuning.StaleAfter, as servers and relays close
// silent clients: a peer killed without a word is then declared dead in
// seconds, not after the idle timeout, so the streams it carried reach
// their applications as resets at once and new connections never wait on
// it. The goroutine that watches for silence runs in wg and ends with the
// connection.
func NewQUIC(conn *quic.Conn, kind Kind, wg *sync.WaitGroup) *QUIC {
	return &QUIC{Conn: conn, kind: kind, health: liveness.CloseWhenStale(muxconn.FromQUIC(conn), codeStale, wg)}
}

func (p *QUIC) Kind() Kind            { return p.kind }
func (p *QUIC) RemoteAddr() net.Addr  { return p.Conn.RemoteAddr() }
func (p *QUIC) RTT() time.Duration    { return p.Conn.ConnectionStats().SmoothedRTT }
func (p *QUIC) Done() <-chan struct{} { return p.Conn.Context().Done() }
func (p *QUIC) String() string        { return string(p.kind) + " " + p.RemoteAddr().String() }

// LogValue logs the path as its kind, remote address and RTT.
func (p *QUIC) LogValue() slog.Value { return LogValue(p) }

// Close closes the connection with no error.
func (p *QUIC) Close() error { return p.Conn.CloseWithError(0, "closed") }

// Accept waits for the next stream the peer opens.
func (p *QUIC) Accept(ctx context.Context) (Stream, error) {
	s, err := p.Conn.AcceptStream(ctx)
	if err != nil {
		return nil, err
	}
	return p.track(s), nil
}

func (p *QUIC) track(s *quic.Stream) Stream {
	p.active.Add(1)
	return &trackedStream{Stream: muxconn.WrapQUIC(s), onDone: func() { p.active.Add(-1) }}
}

// OpenStream opens a stream on the connection, which is end to end
// already, whatever the endpoint.
func (p *QUIC) OpenStream(ctx context.Context, _ string) (Stream, error) {
	s, err := p.Conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return p.track(s), nil
}

// trackedStream runs onDone once when the stream is closed or reset.
type trackedStream struct {
	muxconn.Stream
	onDone   func()
	doneOnce sync.Once
}

func (t *trackedStream) Close() error {
	defer t.doneOnce.Do(t.onDone)
	return t.Stream.Close()
}

func (t *trackedStream) Reset() {
	defer t.doneOnce.Do(t.onDone)
	t.Stream.Reset()
}
