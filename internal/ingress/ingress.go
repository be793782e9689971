// Package ingress opens the listeners that servers (control and relay)
// accept connections on, QUIC and TCP, and runs their accept loops.
package ingress

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/network"
	"github.com/quic-go/quic-go"
)

// Config describes one listener.
type Config struct {
	Addr              string
	TLS               *tls.Config
	QUIC              *quic.Config
	StatelessResetKey *quic.StatelessResetKey
	// AllowAddr, if set, must accept a remote address before its handshake
	// starts, so refused addresses cost no cryptography.
	AllowAddr func(netip.Addr) bool
	// Refused, if set, is called for every address AllowAddr refuses
	// (the owner counts them).
	Refused func()
	// Limited, if set, is called for every TCP connection closed for
	// passing one of the listener's limits (see muxconn.Limits).
	Limited func()
	Logger  *slog.Logger
	// Network opens the UDP socket and the TCP listener; nil means the
	// operating system's. Tests hand in a simulated network.
	Network network.Network
}

// Listen binds the UDP socket and starts listening. Close the returned
// transport with Close, which closes the socket too: quic-go's
// Transport.Close leaves a socket it was handed open.
func Listen(cfg Config) (*quic.Listener, *quic.Transport, error) {
	udp, err := listenPacket(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("ingress %s: %w", cfg.Addr, err)
	}
	tr := &quic.Transport{Conn: udp, StatelessResetKey: cfg.StatelessResetKey}
	qconf := cfg.QUIC.Clone()
	if cfg.AllowAddr != nil {
		qconf.GetConfigForClient = func(info *quic.ClientInfo) (*quic.Config, error) {
			if !allowed(info.RemoteAddr, cfg.AllowAddr) {
				cfg.Logger.Info("refused address", "remote", logs.Addr(info.RemoteAddr), "ingress", cfg.Addr)
				if cfg.Refused != nil {
					cfg.Refused()
				}
				return nil, fmt.Errorf("ingress %s: address %s not allowed", cfg.Addr, info.RemoteAddr)
			}
			// A nil config here would mean quic-go's defaults, not ours.
			return qconf, nil
		}
	}
	ln, err := tr.Listen(cfg.TLS, qconf)
	if err != nil {
		_ = tr.Close()
		_ = udp.Close()
		return nil, nil, fmt.Errorf("ingress %s: %w", cfg.Addr, err)
	}
	return ln, tr, nil
}

func listenPacket(cfg Config) (net.PacketConn, error) {
	return network.Or(cfg.Network).ListenPacket(context.Background(), "udp", cfg.Addr)
}

// Close closes a transport from Listen and then its socket, so the
// address is free again at once (for a restart on the same port).
func Close(tr *quic.Transport) error {
	err := tr.Close()
	if cerr := tr.Conn.Close(); err == nil {
		err = cerr
	}
	return err
}

func allowed(a net.Addr, allow func(netip.Addr) bool) bool {
	ua, ok := a.(*net.UDPAddr)
	return ok && allow(ua.AddrPort().Addr().Unmap())
}

// Acceptor is a listener of either transport.
type Acceptor interface {
	Accept(ctx context.Context) (muxconn.Conn, error)
}

// QUICAcceptor views a QUIC listener as an Acceptor.
func QUICAcceptor(ln *quic.Listener) Acceptor { return quicAcceptor{ln} }

type quicAcceptor struct{ ln *quic.Listener }

func (a quicAcceptor) Accept(ctx context.Context) (muxconn.Conn, error) {
	c, err := a.ln.Accept(ctx)
	if err != nil {
		return nil, err
	}
	return muxconn.FromQUIC(c), nil
}

// ListenTCP opens the TCP listener beside a QUIC one: the same TLS
// configuration and address rules, at addr. maxStreams bounds the streams
// each client may hold open (0: the multiplexer's default).
func ListenTCP(cfg Config, addr string, maxStreams uint32, tcp, wss bool) (*muxconn.Listener, error) {
	var refused func(netip.AddrPort)
	if cfg.Logger != nil {
		refused = func(a netip.AddrPort) {
			cfg.Logger.Info("refused address", "remote", a, "ingress", addr)
			if cfg.Refused != nil {
				cfg.Refused()
			}
		}
	}
	ln, err := muxconn.Listen(muxconn.ListenConfig{
		Addr:               addr,
		Network:            cfg.Network,
		TLS:                cfg.TLS,
		MaxIncomingStreams: maxStreams,
		HandshakeTimeout:   cfg.QUIC.HandshakeIdleTimeout,
		AllowAddr:          cfg.AllowAddr,
		Refused:            refused,
		NoTCP:              !tcp,
		NoWSS:              !wss,
		Limited:            limitedLog(cfg, addr),
		AcceptFailed:       acceptFailedLog(cfg, addr),
	})
	if err != nil {
		return nil, fmt.Errorf("ingress tcp %s: %w", addr, err)
	}
	return ln, nil
}

// floodLogEvery is how often a TCP listener logs what a flood can repeat
// at will (connections over its limits, failed accepts): a line per
// second, saying how many it held back, instead of a line per connection.
const floodLogEvery = time.Second

// limitedLog counts and logs the connections a TCP listener at addr closes
// for passing one of its limits.
func limitedLog(cfg Config, addr string) func(netip.AddrPort, error) {
	lines := &logs.Repeats{Quiet: floodLogEvery}
	return func(a netip.AddrPort, err error) {
		if cfg.Limited != nil {
			cfg.Limited()
		}
		if ok, skipped := lines.Allow("", time.Now()); ok && cfg.Logger != nil {
			cfg.Logger.Warn("connection refused", "remote", a, "ingress", addr, logs.Err(err), "also_refused", skipped)
		}
	}
}

// acceptFailedLog logs the failed accepts of a TCP listener at addr (out
// of file descriptors, for one), which it retries.
func acceptFailedLog(cfg Config, addr string) func(error, time.Duration) {
	lines := &logs.Repeats{Quiet: floodLogEvery}
	return func(err error, wait time.Duration) {
		if ok, skipped := lines.Allow("", time.Now()); ok && cfg.Logger != nil {
			cfg.Logger.Warn("accept failed, retrying", "ingress", addr, "retry_in_ms", logs.Millis(wait), logs.Err(err), "also_failed", skipped)
		}
	}
}

// Serve accepts connections on ln and runs handle for each in its own
// goroutine, until ctx ends (nil) or accepting fails (the error). It
// returns only once every handle has: their context ends when Serve
// stops, and handle must return soon after it does.
func Serve(ctx context.Context, ln Acceptor, handle func(context.Context, muxconn.Conn)) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		wg.Go(func() { handle(ctx, conn) })
	}
}

// TCPAddr is where an ingress listens on TCP: tcp if set, else the host of
// addr at the port its UDP socket bound (bound, nil without QUIC: then
// addr's own port).
func TCPAddr(addr, tcp string, bound net.Addr) string {
	if tcp != "" {
		return tcp
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ua, ok := bound.(*net.UDPAddr); ok {
		port = strconv.Itoa(ua.Port)
	}
	return net.JoinHostPort(host, port)
}

// TCPTransports names what a TCP listener serves, for its log line.
func TCPTransports(tcp, wss bool) string {
	switch {
	case tcp && wss:
		return "tcp+wss"
	case wss:
		return "wss"
	}
	return "tcp"
}
