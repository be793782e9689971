package endpoints

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// DialFunc connects to the service behind a destination. origin is the
// address of the client that connected to the source, when known.
type DialFunc = func(ctx context.Context, origin netip.AddrPort) (net.Conn, error)

// Serve forwards every connection delivered to the destination to the
// service that dial reaches, until ctx ends or the destination closes. A
// failed dial is reported to the source. When Serve returns, the
// connections it forwarded are reset at both ends (cut mid-transfer, they
// must not look complete) and its goroutines are gone.
func (d *Endpoint) Serve(ctx context.Context, dial DialFunc) error {
	var forwards sync.WaitGroup
	var splices tunnel.Splices
	defer forwards.Wait()
	defer splices.Stop()
	for {
		in, err := d.Next(ctx)
		if err != nil {
			return err
		}
		forwards.Go(func() { d.forward(ctx, in, dial, &splices) })
	}
}

func (d *Endpoint) forward(ctx context.Context, in *Incoming, dial DialFunc, splices *tunnel.Splices) {
	if d.DialTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.DialTimeout)
		defer cancel()
	}
	conn, err := dial(ctx, in.Origin)
	if err != nil {
		d.ServiceFailed("destination dial failed", err, "peer", in.Peer.ID)
		in.Refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_DESTINATION_DIAL_FAILED, "%v", err))
		return
	}
	d.RecordError(nil, "")
	tc, err := d.Take(in)
	if err != nil {
		_ = conn.Close()
		return
	}
	// On a fresh goroutine: this one's stack grew while dialing, and the
	// splice keeps its goroutine for the connection's life, mostly idle
	// (issue 10: an idle connection's cost per client).
	splices.Go(tunnel.TCP(conn), tc)
}

// ServiceFailed records err, a failure of the destination's service, as
// the last error and logs it at warn with attrs, once per distinct cause
// and quiet period (a service that refuses every connection makes one
// line, not one per connection; the line says how many were held back).
func (d *Endpoint) ServiceFailed(msg string, err error, attrs ...any) {
	d.RecordError(err, ReasonOf(err))
	ok, skipped := d.failures.Allow(err.Error(), time.Now())
	if !ok {
		return
	}
	attrs = append([]any{"name", d.Key.Name}, attrs...)
	if skipped > 0 {
		attrs = append(attrs, "repeats_not_logged", skipped)
	}
	d.table.cfg.Logger.Warn(msg, append(attrs, logs.Err(err))...)
}
