package muxconn

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/tuning"
)

// ListenConfig describes a TCP listener for muxed connections.
type ListenConfig struct {
	Addr string
	// TLS is the server's configuration, as for QUIC (TLS 1.3, ALPN,
	// client certificates).
	TLS *tls.Config
	// MaxIncomingStreams bounds each client's open streams (0: the
	// multiplexer's default).
	MaxIncomingStreams uint32
	// HandshakeTimeout bounds a client's TLS handshake.
	HandshakeTimeout time.Duration
	// AllowAddr, if set, must accept a client's address before its
	// handshake starts; Refused, if set, is told of each one refused.
	AllowAddr func(netip.Addr) bool
	Refused   func(netip.AddrPort)
}

// Listener accepts muxed connections over TCP. Handshakes run in their
// own goroutines, so a slow client holds up nobody else.
type Listener struct {
	cfg   ListenConfig
	ln    net.Listener
	conns chan Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	err   error
}

// Listen binds the TCP address and starts accepting.
func Listen(cfg ListenConfig) (*Listener, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	l := &Listener{cfg: cfg, ln: ln, conns: make(chan Conn), done: make(chan struct{})}
	l.wg.Go(l.acceptLoop)
	return l, nil
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops accepting and waits for the handshakes in progress.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	err := l.ln.Close()
	l.wg.Wait()
	return err
}

// Accept returns the next connection whose handshake succeeded.
func (l *Listener) Accept(ctx context.Context) (Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.done:
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

func (l *Listener) acceptLoop() {
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				l.err = err
			}
			l.once.Do(func() { close(l.done) })
			return
		}
		if l.cfg.AllowAddr != nil {
			ap := raw.RemoteAddr().(*net.TCPAddr).AddrPort()
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			if !l.cfg.AllowAddr(ap.Addr()) {
				_ = raw.Close()
				if l.cfg.Refused != nil {
					l.cfg.Refused(ap)
				}
				continue
			}
		}
		l.wg.Go(func() { l.handshake(raw) })
	}
}

func (l *Listener) handshake(raw net.Conn) {
	timeout := l.cfg.HandshakeTimeout
	if timeout <= 0 {
		timeout = tuning.HandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
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
	c, err := Server(ctx, raw, l.cfg.TLS, TCP, l.cfg.MaxIncomingStreams)
	if err != nil {
		return
	}
	select {
	case l.conns <- c:
	case <-l.done:
		_ = c.CloseWithError(0, "server stopping")
	}
}

// DialTCP connects to addr over TCP and runs the client side of TLS and
// the multiplexer.
func DialTCP(ctx context.Context, addr string, tlsConf *tls.Config) (Conn, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return Client(ctx, raw, tlsConf, TCP)
}

// TCPDialer dials one server address over TLS over TCP.
type TCPDialer struct{ Addr string }

func (d TCPDialer) Dial(ctx context.Context, tlsConf *tls.Config) (Conn, error) {
	return DialTCP(ctx, d.Addr, tlsConf)
}

func (d TCPDialer) Transport() Transport { return TCP }
