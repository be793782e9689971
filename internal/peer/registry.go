package peer

import (
	"context"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/notify"
)

// Registry holds the peers of one client.
type Registry struct {
	linger   time.Duration
	maintain func(*Peer)

	mu    sync.Mutex
	peers map[identity.ID]*Peer
	timer map[identity.ID]*time.Timer
	// announced changes whenever the set of announced peers does, so TLS
	// verification can wait for a peer the control server is about to name.
	announced notify.Value[map[identity.ID]bool]
	// changed is bumped whenever any peer's state changes.
	changed notify.Value[uint64]
	// closed stops new peers after Close; wg owns the maintain goroutines
	// and the peers' path watchers, and Close waits for them.
	closed bool
	wg     sync.WaitGroup
}

// Changed returns a channel closed at the next change of any peer.
func (r *Registry) Changed() <-chan struct{} {
	_, ch := r.changed.Get()
	return ch
}

// NewRegistry creates an empty registry. maintain runs in its own goroutine
// for each new peer and must return once the peer is Gone (Close waits
// for it). A peer the
// control server stops naming is forgotten after linger unless named again.
func NewRegistry(linger time.Duration, maintain func(*Peer)) *Registry {
	return &Registry{
		linger:   linger,
		maintain: maintain,
		peers:    map[identity.ID]*Peer{},
		timer:    map[identity.ID]*time.Timer{},
	}
}

// Apply replaces the set of announced peers with infos, the latest word of
// the control server.
func (r *Registry) Apply(infos []Info) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	seen := make(map[identity.ID]bool, len(infos))
	for _, info := range infos {
		seen[info.ID] = true
		if t := r.timer[info.ID]; t != nil {
			t.Stop()
			delete(r.timer, info.ID)
		}
		p := r.peers[info.ID]
		if p == nil {
			p = &Peer{ID: info.ID, gone: make(chan struct{}), changed: &r.changed, wg: &r.wg}
			r.peers[info.ID] = p
			p.update(func(State) State { return State{Info: info, Announced: true} })
			r.wg.Go(func() { r.maintain(p) })
			continue
		}
		p.update(func(s State) State {
			s.Info = info
			s.Announced = true
			return s
		})
	}
	for id, p := range r.peers {
		if seen[id] || r.timer[id] != nil {
			continue
		}
		p.update(func(s State) State {
			s.Announced = false
			return s
		})
		r.timer[id] = time.AfterFunc(r.linger, func() { r.expire(id) })
	}
	r.announced.Set(seen)
}

func (r *Registry) expire(id identity.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.peers[id]
	if p == nil || p.state.Load().Announced {
		return
	}
	delete(r.peers, id)
	delete(r.timer, id)
	p.forget()
}

// Close forgets every peer, closing their paths, and waits for the
// goroutines working for them (maintain and the path watchers) to end.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	for id, p := range r.peers {
		if t := r.timer[id]; t != nil {
			t.Stop()
		}
		p.forget()
	}
	clear(r.peers)
	clear(r.timer)
	r.mu.Unlock()
	r.wg.Wait()
}

// Get returns the peer with the given id, if known.
func (r *Registry) Get(id identity.ID) *Peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peers[id]
}

// Known waits until the control server announces id, or ctx ends.
func (r *Registry) Known(ctx context.Context, id identity.ID) bool {
	_, err := r.announced.Wait(ctx, func(m map[identity.ID]bool) bool { return m[id] })
	return err == nil
}

// Peers returns every known peer.
func (r *Registry) Peers() []*Peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Peer, 0, len(r.peers))
	for _, p := range r.peers {
		out = append(out, p)
	}
	return out
}

// WithEndpoint returns the peers that have endpoint name in role.
func (r *Registry) WithEndpoint(name string, role Role) []*Peer {
	var out []*Peer
	for _, p := range r.Peers() {
		if _, ok := p.state.Load().Endpoint(name, role); ok {
			out = append(out, p)
		}
	}
	return out
}
