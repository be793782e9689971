package muxconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pconnet/connet/internal/acceptloop"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/network"
	"github.com/p2pconnet/connet/internal/tuning"
)

// ListenConfig describes a TCP listener for muxed connections.
type ListenConfig struct {
	Addr string
	// Network opens the listener; nil means the operating system's.
	Network network.Network
	// TLS is the server's configuration, as for QUIC (TLS 1.3, ALPN,
	// client certificates).
	TLS *tls.Config
	// MaxIncomingStreams bounds each client's open streams (0: the
	// multiplexer's default).
	MaxIncomingStreams uint32
	// HandshakeTimeout bounds a client's TLS handshake, and then a
	// WebSocket client's upgrade request (0: tuning.HandshakeTimeout).
	HandshakeTimeout time.Duration
	// AllowAddr, if set, must accept a client's address before its
	// handshake starts; Refused, if set, is told of each one refused.
	AllowAddr func(netip.Addr) bool
	Refused   func(netip.AddrPort)
	// NoTCP refuses plain TLS clients, NoWSS WebSocket ones (see
	// Transport); the listener serves both by default. They share the
	// port: the TLS handshake's ALPN tells them apart (a WebSocket client
	// offers http/1.1, end to end even through an HTTP proxy's CONNECT).
	NoTCP, NoWSS bool
	// Limits bound the connections and unfinished handshakes, in all and
	// per address; Limited, if set, is told of each connection closed
	// for passing one, with the ErrOverLimit naming it.
	Limits  Limits
	Limited func(netip.AddrPort, error)
	// AcceptFailed, if set, is told of each failed accept and how long
	// the listener waits before it tries again (see package acceptloop:
	// no failure but Close ends accepting).
	AcceptFailed func(err error, wait time.Duration)
}

// Listener accepts muxed connections over TCP. Handshakes run in their
// own goroutines, so a slow client holds up nobody else, and within
// Limits, so that many of them from one address, or from all, hold up
// nobody either. A failed accept (out of file descriptors, say) is
// retried: only Close ends accepting.
type Listener struct {
	cfg ListenConfig
	// tls is cfg.TLS offering http/1.1 too when WebSockets are served.
	tls   *tls.Config
	ln    net.Listener
	ws    *wsServer
	limit *admission
	conns chan Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

// Listen binds the TCP address and starts accepting.
func Listen(cfg ListenConfig) (*Listener, error) {
	ln, err := network.Or(cfg.Network).Listen(context.Background(), "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = tuning.HandshakeTimeout
	}
	l := &Listener{cfg: cfg, tls: cfg.TLS, ln: ln, limit: newAdmission(cfg.Limits), conns: make(chan Conn), done: make(chan struct{})}
	if !cfg.NoWSS {
		l.tls = cfg.TLS.Clone()
		if cfg.NoTCP {
			l.tls.NextProtos = nil
		}
		l.tls.NextProtos = append(l.tls.NextProtos, alpnHTTP)
		l.ws = newWSServer(l)
		l.wg.Go(l.ws.serve)
	}
	l.wg.Go(l.acceptLoop)
	return l, nil
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops accepting and waits for the handshakes in progress.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	err := l.ln.Close()
	if l.ws != nil {
		l.ws.close()
	}
	l.wg.Wait()
	return err
}

// Accept returns the next connection whose handshake succeeded, or
// net.ErrClosed once the listener is closed.
func (l *Listener) Accept(ctx context.Context) (Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *Listener) acceptLoop() {
	acceptloop.Run(l.ln, l.done, l.admit, l.cfg.AcceptFailed)
	l.once.Do(func() { close(l.done) })
}

// admit starts the handshake of a connection from an allowed address
// within the limits, and closes any other at once.
func (l *Listener) admit(raw net.Conn) {
	ap := raw.RemoteAddr().(*net.TCPAddr).AddrPort()
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if l.cfg.AllowAddr != nil && !l.cfg.AllowAddr(ap.Addr()) {
		_ = raw.Close()
		if l.cfg.Refused != nil {
			l.cfg.Refused(ap)
		}
		return
	}
	c, err := l.limit.admit(raw, ap.Addr())
	if err != nil {
		_ = raw.Close()
		if l.cfg.Limited != nil {
			l.cfg.Limited(ap, err)
		}
		return
	}
	l.wg.Go(func() { l.handshake(c) })
}

func (l *Listener) handshake(raw *limitedConn) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.HandshakeTimeout)
	defer cancel()
	// A listener closed mid-handshake ends it; this goroutine ends with
	// ctx, cancelled on return.
	go func() {
		select {
		case <-l.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	tc := tls.Server(raw, l.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return
	}
	st := tc.ConnectionState()
	// connet's own clients always name connet's protocol; no protocol
	// at all is HTTP (Go's HTTP client offers none of its own accord).
	if l.ws != nil && (st.NegotiatedProtocol == alpnHTTP || st.NegotiatedProtocol == "") {
		l.ws.add(tc)
		return
	}
	if l.cfg.NoTCP || st.NegotiatedProtocol == "" {
		_ = tc.Close()
		return
	}
	c, err := serverMux(tc, st, TCP, l.cfg.MaxIncomingStreams, raw.established)
	if err != nil {
		return
	}
	l.deliver(c)
}

// deliver hands a connection to Accept, or closes it if the listener
// closes first.
func (l *Listener) deliver(c Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		_ = c.CloseWithError(0, "server stopping")
	}
}

// DialTCP connects to addr over the operating system's TCP and runs the
// client side of TLS and the multiplexer.
func DialTCP(ctx context.Context, addr string, tlsConf *tls.Config) (Conn, error) {
	return TCPDialer{Addr: addr}.Dial(ctx, tlsConf)
}

// Dialer opens a connection to one server over a TCP transport.
type Dialer interface {
	Dial(ctx context.Context, tlsConf *tls.Config) (Conn, error)
	Transport() Transport
}

// TCPDialer dials one server address over TLS over TCP.
type TCPDialer struct {
	Addr string
	// Timeout bounds the dial and the handshake: a firewall that drops
	// TCP too must not hold the fallback up.
	Timeout time.Duration
	// Network dials; nil means the operating system's.
	Network network.Network
}

func (d TCPDialer) Dial(ctx context.Context, tlsConf *tls.Config) (Conn, error) {
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	raw, err := network.Or(d.Network).DialContext(ctx, "tcp", d.Addr)
	if err != nil {
		return nil, err
	}
	return Client(ctx, raw, tlsConf, TCP)
}

func (d TCPDialer) Transport() Transport { return TCP }

// Fallback tries its dialers in turn (TLS over TCP, then WebSocket),
// starting from the one that worked last, so that a client behind an
// HTTP-only proxy does not wait for plain TCP to fail on every reconnect.
type Fallback struct {
	Dialers []Dialer
	last    atomic.Int32
}

// Dial returns the first connection one of the dialers makes, or all
// their errors. A certificate that fails verification ends the search:
// another transport reaches the same server with the same certificate.
func (f *Fallback) Dial(ctx context.Context, tlsConf *tls.Config) (Conn, error) {
	var errs []error
	start := int(f.last.Load())
	for i := range f.Dialers {
		j := (start + i) % len(f.Dialers)
		c, err := f.Dialers[j].Dial(ctx, tlsConf)
		if err == nil {
			f.last.Store(int32(j))
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", f.Dialers[j].Transport(), err))
		var cerr *tls.CertificateVerificationError
		if errors.As(err, &cerr) || ctx.Err() != nil {
			break
		}
	}
	return nil, logs.Join(errs...)
}

// Transport is the transport tried first.
func (f *Fallback) Transport() Transport { return f.Dialers[int(f.last.Load())].Transport() }
