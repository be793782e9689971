package connet

import (
	"sync"
	"sync/atomic"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/tunnel"
)

// Route says which kinds of path an endpoint may use.
type Route = netpath.Route

// Routes, as in the config files.
const (
	RouteAny    = netpath.RouteAny
	RouteDirect = netpath.RouteDirect
	RouteRelay  = netpath.RouteRelay
)

// ParseRoute parses "any", "direct" or "relay"; empty means any.
func ParseRoute(s string) (Route, error) { return netpath.ParseRoute(s) }

// RelayEncryption is how a relayed connection is encrypted end to end, so
// that the relay cannot read it.
type RelayEncryption string

// Relay encryptions. With several allowed, a connection uses the first of
// tls, dhxcp, none that both ends allow; none at all is an error on both
// sides.
const (
	// NoEncryption trusts the relay (it still cannot read the hops, which
	// QUIC encrypts, but it sees what it forwards).
	NoEncryption RelayEncryption = "none"
	// TLSEncryption runs TLS 1.3 inside the relayed stream, with the
	// clients' pinned certificates.
	TLSEncryption RelayEncryption = "tls"
	// DHXCPEncryption is an ephemeral X25519 exchange signed with the
	// pinned certificates, then ChaCha20-Poly1305 records.
	DHXCPEncryption RelayEncryption = "dhxcp"
)

func encryptionNames(es []RelayEncryption) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e)
	}
	return out
}

// endpoint is what destinations and sources share: registration with the
// client, connection counters and closing.
type endpoint struct {
	client *Client
	key    peer.EndpointKey

	active, total atomic.Int64
	lastErr       atomic.Pointer[lastError]
	metrics       *metrics.Endpoint
	// perPeer counts the open connections with each peer, for least-conns
	// and the status page.
	perPeerMu sync.Mutex
	perPeer   map[identity.ID]int64

	closeOnce sync.Once
	closed    chan struct{}
}

func newEndpoint(c *Client, key peer.EndpointKey) endpoint {
	return endpoint{
		client: c, key: key, perPeer: map[identity.ID]int64{}, closed: make(chan struct{}),
		metrics: c.metrics.Endpoint(key.Name, string(key.Role), string(netpath.DirectOutgoing), string(netpath.DirectIncoming), string(netpath.Relay), string(netpath.RelayTCP)),
	}
}

// activeWith is the number of open connections with peer id.
func (e *endpoint) activeWith(id identity.ID) int64 {
	e.perPeerMu.Lock()
	defer e.perPeerMu.Unlock()
	return e.perPeer[id]
}

func (e *endpoint) addActive(id identity.ID, n int64) {
	e.perPeerMu.Lock()
	defer e.perPeerMu.Unlock()
	e.active.Add(n)
	if e.perPeer[id] += n; e.perPeer[id] == 0 {
		delete(e.perPeer, id)
	}
}

func (e *endpoint) isClosed() bool {
	select {
	case <-e.closed:
		return true
	default:
		return false
	}
}

// close unregisters the endpoint from its client; remove deletes it from the
// client's map if it is still the registered one.
func (e *endpoint) close(remove func()) {
	e.closeOnce.Do(func() {
		close(e.closed)
		c := e.client
		c.mu.Lock()
		remove()
		c.updateAnnounceLocked()
		c.mu.Unlock()
		c.cfg.logger.Info("endpoint removed", "name", e.key.Name, "role", e.key.Role)
	})
}

// recordError remembers why a connection failed (nil: it succeeded).
func (e *endpoint) recordError(err error) {
	if err == nil {
		e.lastErr.Store(nil)
		return
	}
	e.metrics.Failed()
	e.lastErr.Store(&lastError{msg: err.Error(), reason: ReasonOf(err)})
}

// lastError is why the last connection failed: the error's text and its
// DialReason's short name, if it has one.
type lastError struct{ msg, reason string }

func (e *endpoint) lastError() lastError {
	if p := e.lastErr.Load(); p != nil {
		return *p
	}
	return lastError{}
}

// track counts a connection with peer id on p from its start until its
// Close, the one place where tunnelled connections of sources and
// destinations are counted; encs are the endpoint's relay encryptions.
func (e *endpoint) track(conn *tunnel.Conn, id identity.ID, p netpath.Path, encs []RelayEncryption) *trackedConn {
	e.total.Add(1)
	e.addActive(id, 1)
	kind := string(p.Kind())
	e.metrics.Opened(kind)
	life := e.client.openLife(e.key, id, p, encs)
	return &trackedConn{Conn: conn, life: life, done: func() {
		e.addActive(id, -1)
		e.metrics.Closed(kind)
		e.metrics.Bytes(life.sent.Load(), life.received.Load())
	}}
}

// incoming is a stream a source opened to one of our destinations.
type incoming struct {
	*tunnel.Incoming
	path netpath.Path
	peer *peer.Peer
	// answered ends the stream's wait, one of the peer's pending streams
	// (see admitStream); Accept and Refuse call it.
	answered func()
}
