// Package quicdial dials a server or peer over QUIC at several candidate
// addresses at once, and tells which addresses a socket can send to. The
// direct paths between peers and the client's relay connections both dial
// this way.
package quicdial

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/p2pconnet/connet/internal/logs"
	"github.com/quic-go/quic-go"
)

// ErrNoCandidates reports a peer with no address this socket can reach.
var ErrNoCandidates = errors.New("no usable candidate address")

// Any dials every candidate at once and returns the first connection
// whose handshake completes; the other attempts are cancelled, and
// connections that complete anyway are closed. A dead candidate therefore
// never delays a live one. Each candidate's fate is logged to log at the
// fine level.
func Any(ctx context.Context, tr *quic.Transport, candidates []netip.AddrPort, tlsConf *tls.Config, conf *quic.Config, log *slog.Logger) (*quic.Conn, error) {
	v4, v6 := Families(tr.Conn.LocalAddr())
	var usable []netip.AddrPort
	for _, c := range candidates {
		if Usable(c.Addr(), v4, v6) {
			usable = append(usable, netip.AddrPortFrom(c.Addr().Unmap(), c.Port()))
		} else {
			log.Log(ctx, logs.LevelFine, "candidate skipped", "candidate", c, "why", "not reachable from this socket's address family or scope")
		}
	}
	if len(usable) == 0 {
		return nil, ErrNoCandidates
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		conn *quic.Conn
		err  error
	}
	results := make(chan result, len(usable))
	for _, c := range usable {
		go func() {
			start := time.Now()
			conn, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(c), tlsConf.Clone(), conf)
			switch {
			case err == nil:
				log.Log(ctx, logs.LevelFine, "candidate answered", "candidate", c, "after_ms", logs.Millis(time.Since(start)),
					"rtt_ms", logs.Millis(conn.ConnectionStats().SmoothedRTT))
			case ctx.Err() == nil: // not merely cut short because another won
				log.Log(ctx, logs.LevelFine, "candidate failed", "candidate", c, "after_ms", logs.Millis(time.Since(start)), logs.Err(err))
			}
			if err != nil {
				err = fmt.Errorf("%s: %w", c, err)
			}
			results <- result{conn, err}
		}()
	}

	var winner *quic.Conn
	var errs []error
	for range usable {
		r := <-results
		switch {
		case r.err != nil:
			errs = append(errs, r.err)
		case winner == nil:
			winner = r.conn
			cancel()
		default:
			_ = r.conn.CloseWithError(0, "another candidate won")
		}
	}
	if winner != nil {
		return winner, nil
	}
	return nil, logs.Join(errs...)
}
