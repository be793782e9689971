package ingress

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/muxconn"
)

// Ingress is one address a server (control or relay) accepts connections
// at: QUIC on UDP, TCP beside it, or both.
type Ingress struct {
	// Addr is the UDP address for QUIC.
	Addr string
	// NoQUIC leaves QUIC out: the ingress listens on TCP only.
	NoQUIC bool
	// TCP and WSS add a listener on TCP, for clients whose UDP is
	// blocked: TLS with a stream multiplexer, and the same inside a
	// WebSocket over HTTPS (one port: the TLS handshake tells them
	// apart). It listens at TCPAddr; an empty TCPAddr means Addr's host
	// at the port the UDP socket bound (the same port number, as clients
	// expect).
	TCP, WSS bool
	TCPAddr  string
	// AllowAddr, if set, must accept a client's address before its
	// handshake starts.
	AllowAddr func(netip.Addr) bool
}

// Listener is one ingress of a Group: how it listens, and what serves
// the connections it accepts.
type Listener struct {
	Ingress Ingress
	// Config is the listeners' configuration (its Addr and AllowAddr are
	// the ingress's).
	Config Config
	// MaxStreams bounds the streams of each TCP client (0: the
	// multiplexer's default).
	MaxStreams uint32
	// Handle serves one accepted connection until it ends or ctx does.
	Handle func(ctx context.Context, conn muxconn.Conn)
	// Bound, if set, is told each address bound, and whether it is the
	// TCP listener's (else QUIC's).
	Bound func(addr net.Addr, tcp bool)
	// Log are the attributes of the "listening" line, after the address.
	Log []any
}

// Group is a server's ingresses: it listens on each, then serves all
// their accept loops.
type Group struct {
	Listeners []Listener
	// Name begins the "<name> listening" log line.
	Name   string
	Logger *slog.Logger
}

// Run listens on every listener, calls ready once all are bound, and
// serves them until ctx ends (nil) or a listener fails to bind or to
// accept (that error). It returns once every accept loop and every
// handler has.
func (g Group) Run(ctx context.Context, ready func()) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	defer wg.Wait()
	// serve runs one accept loop until ctx ends; a failure ends the
	// group.
	serve := func(ln Acceptor, closeLn func(), l Listener) {
		wg.Go(func() {
			defer closeLn()
			if err := Serve(ctx, ln, l.Handle); err != nil {
				cancel(err)
			}
		})
	}
	for _, l := range g.Listeners {
		cfg := l.Config
		cfg.Addr, cfg.AllowAddr = l.Ingress.Addr, l.Ingress.AllowAddr
		in := l.Ingress
		p, err := ListenPair(PairConfig{Config: cfg, QUIC: !in.NoQUIC, TCP: in.TCP, WSS: in.WSS, TCPAddr: in.TCPAddr, MaxStreams: l.MaxStreams})
		if err != nil {
			cancel(err)
			return err
		}
		if p.QUIC != nil {
			tr := p.Transport
			g.bound(l, tr.Conn.LocalAddr(), false)
			serve(QUICAcceptor(p.QUIC), func() { _ = Close(tr) }, l)
		}
		if ln := p.TCP; ln != nil {
			g.bound(l, ln.Addr(), true)
			serve(ln, func() { _ = ln.Close() }, l)
		}
	}
	ready()
	<-ctx.Done()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// bound reports and logs an address l bound.
func (g Group) bound(l Listener, addr net.Addr, tcp bool) {
	if l.Bound != nil {
		l.Bound(addr, tcp)
	}
	attrs := []any{"addr", logs.Addr(addr)}
	if tcp {
		attrs = append(attrs, "transport", TCPTransports(l.Ingress.TCP, l.Ingress.WSS))
	}
	g.Logger.Info(g.Name+" listening", append(attrs, l.Log...)...)
}
