// Package controlclient is the client side of the control protocol: it keeps
// one authenticated connection to the control server, sends the client's
// endpoints and addresses whenever they change, and hands every update the
// server sends to the caller. A lost connection is retried with jittered
// backoff, forever, until the caller stops it; only a refused token, or a
// certificate that fails verification before the first success, ends it.
package controlclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/backoff"
	"github.com/p2pconnet/connet/internal/liveness"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/notify"
	"github.com/p2pconnet/connet/internal/untrusted"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
)

// Reconnect bounds: quick first retries for blips, a ceiling that keeps a
// long outage from hammering the server.
const (
	reconnectMin = 200 * time.Millisecond
	reconnectMax = 15 * time.Second
)

// ErrAuth reports that the server refused the client's token or address;
// retrying will not help.
var ErrAuth = errors.New("control server refused the client")

// ErrTooLarge reports a configuration over the protocol's limits, which
// the server would refuse.
var ErrTooLarge = errors.New("controlclient: over the protocol's limits")

// Config describes the session.
type Config struct {
	Transport  *quic.Transport
	ServerAddr string
	// TLS must hold the client's identity certificate and the server's
	// trust roots and name; the ALPN is set by the session.
	TLS          *tls.Config
	QUIC         *quic.Config
	Token        string
	Metadata     string
	BuildVersion string
	Logger       *slog.Logger
	// LocalAddrs lists the client's own addresses for peers on its LAN; it
	// is called on every (re)connect since interfaces come and go.
	LocalAddrs func(observed netip.AddrPort) []netip.AddrPort
	// Connected, if set, is called on every successful connection (the
	// client's metrics count reconnects).
	Connected func()
}

// Status is the state of the session as the status page shows it.
type Status struct {
	Connected bool
	Observed  netip.AddrPort
	LastError string
	Since     time.Time
}

// Announcement is what the client tells the server about itself, besides
// its addresses.
type Announcement struct {
	Endpoints []*pb.Endpoint
	// Relays are the ids of the relays the client is connected to.
	Relays [][]byte
	// NAT is how the client's NAT maps, as far as it can tell.
	NAT pb.NatMapping
	// PunchSecret tags the probes peers send this client (see package
	// direct); fixed for the session's life.
	PunchSecret []byte
	// Mapped are addresses a NAT gateway forwards to the client's socket
	// (port mappings): sent first among the client's own addresses.
	Mapped []netip.AddrPort
}

// Session keeps the connection to the control server.
type Session struct {
	cfg      Config
	announce *notify.Value[Announcement]
	onState  func(*pb.ServerState)
	status   notify.Value[Status]
}

// New prepares a session that announces what announce holds and passes
// each server update to onState (called from one goroutine at a time).
func New(cfg Config, announce *notify.Value[Announcement], onState func(*pb.ServerState)) *Session {
	return &Session{cfg: cfg, announce: announce, onState: onState}
}

// Status returns the session state and a channel closed at its next change.
func (s *Session) Status() (Status, <-chan struct{}) { return s.status.Get() }

// Run connects and reconnects until ctx ends, the server refuses the
// client, or the server's certificate fails verification before the first
// success (an error wrapping untrusted.ErrCertificate); it returns why.
func (s *Session) Run(ctx context.Context) error {
	// The server refuses more; retrying would not help.
	if n := len(s.cfg.Metadata); n > wire.MaxMetadata {
		return fmt.Errorf("%w: metadata of %d bytes (at most %d)", ErrTooLarge, n, wire.MaxMetadata)
	}
	bo := backoff.Backoff{Min: reconnectMin, Max: reconnectMax}
	// Until the first success, a certificate that fails verification is a
	// mistake in the configuration, which retrying cannot fix; later it may
	// be a server in the middle of a certificate change, so it is retried.
	reached := false
	for {
		connected, err := s.runOnce(ctx, &bo)
		reached = reached || connected
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		s.status.Set(Status{LastError: err.Error(), Since: time.Now()})
		if errors.Is(err, ErrAuth) {
			s.cfg.Logger.Error("control server refused this client", "err", err)
			return err
		}
		if !reached {
			if cerr := untrusted.Check(s.cfg.ServerAddr, err); cerr != nil {
				s.cfg.Logger.Error("control server's certificate is not trusted", "server", s.cfg.ServerAddr, "err", cerr)
				return cerr
			}
		}
		delay := bo.Next()
		if reached {
			s.cfg.Logger.Warn("control connection lost, reconnecting", "server", s.cfg.ServerAddr, "retry_in_ms", logs.Millis(delay), logs.Err(err))
		} else {
			s.cfg.Logger.Warn("cannot reach control server, retrying", "server", s.cfg.ServerAddr, "retry_in_ms", logs.Millis(delay), logs.Err(err))
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// codeStale closes a control connection that went silent.
const codeStale quic.ApplicationErrorCode = 2

// runOnce connects and serves one connection; connected tells whether the
// server accepted the client before the connection ended.
func (s *Session) runOnce(ctx context.Context, bo *backoff.Backoff) (connected bool, err error) {
	conn, stream, reply, err := s.connect(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = conn.CloseWithError(0, "client leaving") }()
	// A server that died without its close reaching us (or a path that
	// broke) goes silent: give up on it after the silence limit servers
	// apply to clients, not after the much longer idle timeout.
	liveness.CloseWhenStale(conn, codeStale)
	bo.Reset()

	observed, err := wire.ToAddrPort(reply.GetObserved())
	if err != nil {
		return false, fmt.Errorf("server reply: observed address: %w", err)
	}
	s.status.Set(Status{Connected: true, Observed: observed, Since: time.Now()})
	if s.cfg.Connected != nil {
		s.cfg.Connected()
	}
	s.cfg.Logger.Info("connected to control server", "server", s.cfg.ServerAddr, "observed", observed)

	ctx, cancel := context.WithCancelCause(ctx)
	// readState ends only when the stream does: wait for both goroutines
	// after cancelling and closing the connection, so neither outlives it.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { _ = conn.CloseWithError(0, "client leaving") }()
	defer cancel(nil)
	wg.Go(func() { cancel(s.sendState(ctx, stream, observed)) })
	wg.Go(func() { cancel(s.readState(stream)) })
	<-ctx.Done()
	return true, logs.Closed(context.Cause(ctx), "control server")
}

func (s *Session) connect(ctx context.Context) (*quic.Conn, *quic.Stream, *pb.HelloReply, error) {
	addr, err := net.ResolveUDPAddr("udp", s.cfg.ServerAddr)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("resolve %s: %w", s.cfg.ServerAddr, err)
	}
	tlsConf := s.cfg.TLS.Clone()
	tlsConf.NextProtos = []string{wire.ALPNControl}
	conn, err := s.cfg.Transport.Dial(ctx, addr, tlsConf, s.cfg.QUIC)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("dial %s: %w", s.cfg.ServerAddr, err)
	}
	fail := func(err error) (*quic.Conn, *quic.Stream, *pb.HelloReply, error) {
		_ = conn.CloseWithError(0, "")
		return nil, nil, nil, err
	}
	stream, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return fail(fmt.Errorf("open control stream: %w", err))
	}
	_ = stream.SetDeadline(time.Now().Add(s.cfg.QUIC.HandshakeIdleTimeout))
	hello := &pb.Hello{Token: s.cfg.Token, Metadata: s.cfg.Metadata, BuildVersion: s.cfg.BuildVersion}
	// A server that refuses the hello before reading it all stops the
	// write; its reply still says why, so read it before giving up.
	werr := wire.Write(stream, hello)
	var reply pb.HelloReply
	if err := wire.Read(stream, &reply, wire.MaxControlMessage); err != nil {
		if werr != nil {
			return fail(werr)
		}
		return fail(err)
	}
	if e := wire.FromPB(reply.GetError()); e != nil {
		return fail(fmt.Errorf("%w: %w", ErrAuth, e))
	}
	_ = stream.SetDeadline(time.Time{})
	return conn, stream, &reply, nil
}

// sendState sends the client's state now and after every change.
func (s *Session) sendState(ctx context.Context, stream *quic.Stream, observed netip.AddrPort) error {
	locals := s.cfg.LocalAddrs(observed)
	for {
		a, changed := s.announce.Get()
		local := make([]*pb.AddrPort, 0, len(a.Mapped)+len(locals))
		for _, ap := range append(slices.Clone(a.Mapped), locals...) {
			local = append(local, wire.FromAddrPort(ap))
		}
		msg := &pb.ClientState{LocalAddrs: local, Endpoints: a.Endpoints, Relays: a.Relays, NatMapping: a.NAT, PunchSecret: a.PunchSecret}
		if err := wire.Write(stream, msg); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

func (s *Session) readState(stream *quic.Stream) error {
	for {
		var msg pb.ServerState
		if err := wire.Read(stream, &msg, wire.MaxControlMessage); err != nil {
			return err
		}
		if obs, err := wire.ToAddrPort(msg.GetObserved()); err == nil {
			s.status.Update(func(st Status) Status { st.Observed = obs; return st })
		}
		s.onState(&msg)
	}
}
