package forward

import "sync"

// proxyBufferSize is the copy buffer of a reverse proxy's response body,
// the size httputil.ReverseProxy allocates by itself.
const proxyBufferSize = 32 << 10

// bufferPool lends a reverse proxy its copy buffers. Without one,
// httputil.ReverseProxy allocates a fresh 32 KiB buffer for every
// response: with an http source in front of an http destination, 64 KiB
// of garbage per request, and the collector's work that follows was a
// fifth of the clients' CPU under small requests (docs/performance.md).
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, proxyBufferSize); return &b }}}
}

// Get and Put satisfy httputil.BufferPool, whose slices the pool keeps
// behind pointers (a Put then allocates a slice header, not a buffer).
// Put takes back only buffers of the pool's size.
func (p *bufferPool) Get() []byte { return *p.pool.Get().(*[]byte) }

func (p *bufferPool) Put(b []byte) {
	if cap(b) != proxyBufferSize {
		return
	}
	b = b[:proxyBufferSize]
	p.pool.Put(&b)
}
