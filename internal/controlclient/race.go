package controlclient

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pconnet/connet/internal/muxconn"
)

// dialed is the outcome of one transport's dial.
type dialed struct {
	conn muxconn.Conn
	err  error
	tcp  bool
}

// race is one dialRace: QUIC, then TCP beside it.
type race struct {
	s       *Session
	ctx     context.Context
	cancel  context.CancelFunc
	results chan dialed
	wg      sync.WaitGroup
	// refused is set when the server's host refuses QUIC's port.
	refused    atomic.Bool
	pending    int
	tcpStarted bool
	errs       []error
}

// dialRace dials QUIC and, once it has gone tcpHeadStart without an
// answer or timed out, the TCP transport beside it. The first connection
// wins; the other dial is cancelled and waited for, and closed if it
// succeeded meanwhile, so no goroutine or connection outlives the call.
func (s *Session) dialRace(ctx context.Context) (muxconn.Conn, error) {
	r := &race{s: s, results: make(chan dialed, 2)}
	r.ctx, r.cancel = context.WithCancel(ctx)
	defer r.cancel()
	r.startQUIC()
	headStart := time.NewTimer(tcpHeadStart)
	defer headStart.Stop()
	for r.pending > 0 {
		select {
		case <-headStart.C:
			if !r.tcpStarted {
				r.startTCP(r.quicSlow())
			}
		case d := <-r.results:
			if conn, over, err := r.outcome(d); over {
				return conn, err
			}
		}
	}
	return nil, dialFailure(s.cfg.ServerAddr, r.errs...)
}

func (r *race) startQUIC() {
	r.pending++
	r.wg.Go(func() {
		conn, err := r.s.dialQUIC(r.ctx, &r.refused)
		if err != nil {
			r.results <- dialed{err: err}
			return
		}
		r.results <- dialed{conn: muxconn.FromQUIC(conn)}
	})
}

// startTCP dials TCP beside QUIC, saying why (warning).
func (r *race) startTCP(warning string) {
	r.s.cfg.Logger.Warn(warning, "server", r.s.cfg.ServerAddr, "first", r.s.cfg.TCP.Transport())
	r.tcpStarted = true
	r.pending++
	r.wg.Go(func() {
		conn, err := r.s.dialTCP(r.ctx)
		r.results <- dialed{conn: conn, err: err, tcp: true}
	})
}

// quicSlow says why TCP starts while QUIC is still dialing.
func (r *race) quicSlow() string {
	if r.refused.Load() {
		return "QUIC to the control server refused (nothing receives UDP at its port: not running, or UDP rejected): trying TCP beside it"
	}
	return "QUIC to the control server not answering yet (UDP blocked?): trying TCP beside it"
}

// outcome takes one dial's result. The race is over at the first
// connection, and at a QUIC failure that TCP cannot get around (the server
// refused the handshake: it is there, and TCP reaches the same one); other
// QUIC failures start TCP.
func (r *race) outcome(d dialed) (conn muxconn.Conn, over bool, err error) {
	r.pending--
	if d.err == nil {
		if d.tcp {
			r.s.cfg.Logger.Warn("control server reached over TCP: QUIC does not pass", "server", r.s.cfg.ServerAddr, "transport", d.conn.Transport())
		}
		r.closeLosers()
		return d.conn, true, nil
	}
	r.errs = append(r.errs, d.err)
	if d.tcp || r.tcpStarted {
		return nil, false, nil
	}
	var refusal *refusedError
	switch {
	case isTimeout(d.err):
		r.startTCP("QUIC to the control server timed out (UDP blocked?): trying TCP beside it")
	case errors.As(d.err, &refusal):
		// Not the path: the host answered. A server on TCP only may
		// still be there.
		r.startTCP("QUIC to the control server refused (nothing receives UDP at its port: not running, or UDP rejected): trying TCP")
	default:
		return nil, true, d.err
	}
	return nil, false, nil
}

// closeLosers ends the other dial and closes what it made.
func (r *race) closeLosers() {
	r.cancel()
	r.wg.Wait()
	close(r.results)
	for d := range r.results {
		if d.conn != nil {
			_ = d.conn.CloseWithError(0, "another transport won")
		}
	}
}
