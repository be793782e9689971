package tunnel

import "sync"

// Splices runs the splices of an owner that ends them together, as a
// server's Serve does when it stops: Stop aborts the ones still running,
// so the far side of each end sees a reset rather than a clean end (a
// client stopping mid-transfer truncates its connections; it must not
// look complete), and waits for them to return.
type Splices struct {
	mu      sync.Mutex
	live    map[*splice]struct{}
	stopped bool
	wg      sync.WaitGroup
}

// Go splices a and b on a goroutine of its own (a fresh, small stack: a
// splice keeps its goroutine for the connection's life). After Stop it
// aborts both ends instead.
func (g *Splices) Go(a, b HalfCloser) {
	s := &splice{a: a, b: b}
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		s.abort()
		_ = a.Close()
		_ = b.Close()
		return
	}
	if g.live == nil {
		g.live = make(map[*splice]struct{})
	}
	g.live[s] = struct{}{}
	g.wg.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		s.run()
		g.mu.Lock()
		delete(g.live, s)
		g.mu.Unlock()
	}()
}

// Stop aborts every running splice, refuses new ones, and waits until all
// have returned.
func (g *Splices) Stop() {
	g.mu.Lock()
	g.stopped = true
	for s := range g.live {
		s.abort()
	}
	g.mu.Unlock()
	g.wg.Wait()
}
