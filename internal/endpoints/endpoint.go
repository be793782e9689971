package endpoints

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pconnet/connet/internal/balance"
	"github.com/p2pconnet/connet/internal/e2ee"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// acceptWait is how long a connection from a source waits for the
// destination to take it before the source is told it is busy.
const acceptWait = 10 * time.Second

// Options are what an endpoint's config says that the table acts on.
type Options struct {
	Route netpath.Route
	// Encryptions are the relay encryptions the endpoint accepts.
	Encryptions []e2ee.Encryption
	// DialTimeout bounds a destination's dial of its service, and a
	// source's attempt at one destination peer; 0 leaves it to the
	// caller's context.
	DialTimeout time.Duration
	// Policy and Retry are a source's load balancing.
	Policy balance.Policy
	Retry  balance.Retry
}

// Endpoint is one destination or source of the client: its registration
// in the table and its connection counters. A destination's connections
// arrive through Deliver and leave through Next and Take, or Serve (see
// serve.go); a source opens its own with Dial (see dial.go).
type Endpoint struct {
	table *Table
	Key   peer.EndpointKey
	Options

	active, total atomic.Int64
	lastErr       atomic.Pointer[LastError]
	metrics       *metrics.Endpoint
	// perPeer counts the open connections with each peer, for least-conns
	// and the status page.
	perPeerMu sync.Mutex
	perPeer   map[identity.ID]int64

	// queue holds a destination's connections until they are taken;
	// failures keeps a service that fails every connection from logging
	// a line per connection.
	queue    chan *Incoming
	failures logs.Repeats
	// turn counts a source's connections, for round-robin.
	turn atomic.Uint64

	closeOnce sync.Once
	closed    chan struct{}
}

func (t *Table) newEndpoint(key peer.EndpointKey, opts Options) *Endpoint {
	return &Endpoint{
		table: t, Key: key, Options: opts,
		perPeer: map[identity.ID]int64{}, queue: make(chan *Incoming), closed: make(chan struct{}),
		metrics: t.cfg.Metrics.Endpoint(key.Name, string(key.Role), string(netpath.DirectOutgoing), string(netpath.DirectIncoming), string(netpath.Relay), string(netpath.RelayTCP)),
	}
}

// Encryptions converts a config's list of relay encryptions.
func Encryptions[E ~string](es []E) []e2ee.Encryption {
	out := make([]e2ee.Encryption, len(es))
	for i, e := range es {
		out[i] = e2ee.Encryption(e)
	}
	return out
}

// Active and Total count the endpoint's open connections and all it had.
func (e *Endpoint) Active() int64 { return e.active.Load() }
func (e *Endpoint) Total() int64  { return e.total.Load() }

// ActiveWith is the number of open connections with peer id.
func (e *Endpoint) ActiveWith(id identity.ID) int64 {
	e.perPeerMu.Lock()
	defer e.perPeerMu.Unlock()
	return e.perPeer[id]
}

func (e *Endpoint) addActive(id identity.ID, n int64) {
	e.perPeerMu.Lock()
	defer e.perPeerMu.Unlock()
	e.active.Add(n)
	if e.perPeer[id] += n; e.perPeer[id] == 0 {
		delete(e.perPeer, id)
	}
}

// Closed is closed when the endpoint is.
func (e *Endpoint) Closed() <-chan struct{} { return e.closed }

// IsClosed tells whether the endpoint is closed.
func (e *Endpoint) IsClosed() bool {
	select {
	case <-e.closed:
		return true
	default:
		return false
	}
}

// Close unregisters the endpoint from its table, once.
func (e *Endpoint) Close() {
	e.closeOnce.Do(func() {
		close(e.closed)
		e.table.remove(e)
		e.table.cfg.Logger.Info("endpoint removed", "name", e.Key.Name, "role", e.Key.Role)
	})
}

// LastError is why the last connection failed: the error's text and its
// reason's short name, if it has one.
type LastError struct{ Msg, Reason string }

// RecordError remembers why a connection failed (nil: it succeeded);
// reason is the error's short name, if any.
func (e *Endpoint) RecordError(err error, reason string) {
	if err == nil {
		e.lastErr.Store(nil)
		return
	}
	e.metrics.Failed()
	e.lastErr.Store(&LastError{Msg: err.Error(), Reason: reason})
}

// LastError is why the last connection failed, zero after a success.
func (e *Endpoint) LastError() LastError {
	if p := e.lastErr.Load(); p != nil {
		return *p
	}
	return LastError{}
}

// Track counts a connection with peer id on p from its start until its
// Close, the one place where tunnelled connections of sources and
// destinations are counted.
func (e *Endpoint) Track(stream netpath.Stream, id identity.ID, p netpath.Path, remote net.Addr) *Conn {
	e.total.Add(1)
	e.addActive(id, 1)
	kind := string(p.Kind())
	e.metrics.Opened(kind)
	life := e.openLife(id, p)
	conn := &tunnel.Conn{Stream: stream, Local: e.table.cfg.LocalAddr, Remote: remote}
	return &Conn{Conn: conn, life: life, done: func() {
		e.addActive(id, -1)
		e.metrics.Closed(kind)
		e.metrics.Bytes(life.sent.Load(), life.received.Load())
	}}
}

// Deliver hands a stream to the destination's Next, or refuses it when
// the destination closes or takes none in time.
func (e *Endpoint) Deliver(in *Incoming) {
	timer := time.NewTimer(acceptWait)
	defer timer.Stop()
	select {
	case e.queue <- in:
	case <-e.closed:
		in.Refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_DESTINATION_NOT_FOUND, "destination %q closed", e.Key.Name))
	case <-timer.C:
		in.Refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_LIMIT, "destination %q is not accepting connections", e.Key.Name))
	}
}

// Next waits for the next stream delivered to the destination.
func (e *Endpoint) Next(ctx context.Context) (*Incoming, error) {
	select {
	case in := <-e.queue:
		return in, nil
	case <-e.closed:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// Take accepts a delivered stream and returns it as a tracked connection
// whose RemoteAddr is the client that connected to the source when the
// source knows it (so a service sees its real client, as in
// X-Forwarded-For), else the peer's end of the path. A stream the source
// gave up on is reset, and Take fails.
func (e *Endpoint) Take(in *Incoming) (*Conn, error) {
	if err := in.Accept(); err != nil {
		in.Stream.Reset()
		return nil, err
	}
	var remote net.Addr = in.Path.RemoteAddr()
	if in.Origin.IsValid() {
		remote = net.TCPAddrFromAddrPort(in.Origin)
	}
	return e.Track(in.Stream, in.Peer.ID, in.Path, remote), nil
}
