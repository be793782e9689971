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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/p2pconnet/connet/internal/liveness"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/notify"
	"github.com/p2pconnet/connet/internal/redial"
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

	// TCP, if set, is where the session falls back to TLS over TCP (or a
	// WebSocket) when QUIC handshakes time out: UDP is blocked on the way.
	// Nil means QUIC only.
	TCP muxconn.Dialer
	// QUICRetry is how often a session on TCP tries QUIC again, to move
	// back once UDP passes; zero means DefaultQUICRetry.
	QUICRetry time.Duration
	// ProbeRefusal lets a QUIC dial listen for the server's host refusing
	// its port, on a socket of its own (see watchRefusal). Only a client
	// on the operating system's network can: one on another (a simulated
	// network in tests) must not send to the server's address outside it.
	ProbeRefusal bool
}

// DefaultQUICRetry is how often a session that fell back to TCP tries
// QUIC again.
const DefaultQUICRetry = 30 * time.Second

// Status is the state of the session as the status page shows it.
type Status struct {
	Connected bool
	// Transport carries the connection while Connected.
	Transport muxconn.Transport
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
	// RelayObservations are where the relays see the client, as each
	// signed it: the control server works out how the client's NAT maps
	// from them (see package observation).
	RelayObservations []*pb.SignedObservation
	// PunchSecret tags the probes peers send this client (see package
	// direct); fixed for the session's life. None keeps the client out of
	// birthday punches.
	PunchSecret []byte
	// Mapped are addresses a NAT gateway forwards to the client's socket
	// (port mappings): sent first among the client's own addresses.
	Mapped []netip.AddrPort
}

// Session keeps the connection to the control server.
type Session struct {
	cfg Config
	// onTCP is set while QUIC handshakes time out: reconnects go straight
	// to TCP until a QUIC probe succeeds. Only Run's goroutine (and the
	// probe it waits for) touch it and next.
	onTCP bool
	// next is a QUIC connection the probe made, for the next connect.
	next     *quic.Conn
	announce *notify.Value[Announcement]
	onState  func(State)
	status   notify.Value[Status]
}

// New prepares a session that announces what announce holds and passes
// each server update, decoded, to onState (called from one goroutine at a time).
func New(cfg Config, announce *notify.Value[Announcement], onState func(State)) *Session {
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
	defer s.closeNext()
	loop := redial.Loop{
		Min:          reconnectMin,
		Max:          reconnectMax,
		Logger:       s.cfg.Logger.With("server", s.cfg.ServerAddr),
		Unreached:    "cannot reach control server, retrying",
		Lost:         "control connection lost, reconnecting",
		Refused:      ErrAuth,
		RefusedMsg:   "control server refused this client",
		TrustAddr:    s.cfg.ServerAddr,
		UntrustedMsg: "control server's certificate is not trusted",
		Failed: func(err error) slog.Level {
			s.status.Set(Status{LastError: err.Error(), Since: time.Now()})
			return slog.LevelWarn
		},
	}
	return loop.Run(ctx, func(ctx context.Context, connected func()) error {
		for {
			// Moving back to QUIC is no failure: connect again at once.
			err := s.runOnce(ctx, connected)
			if !errors.Is(err, errQUICBack) || ctx.Err() != nil {
				return err
			}
		}
	})
}

// closeNext closes the QUIC connection the probe made, if the session
// ends before it takes it.
func (s *Session) closeNext() {
	if s.next != nil {
		_ = s.next.CloseWithError(0, "client leaving")
		s.next = nil
	}
}

// codeStale closes a control connection that went silent.
const codeStale quic.ApplicationErrorCode = 2

// runOnce connects and serves one connection; it calls connected once the
// server accepted the client.
func (s *Session) runOnce(ctx context.Context, connected func()) error {
	conn, stream, reply, err := s.connect(ctx)
	if err != nil {
		return err
	}
	s.onTCP = conn.Transport() != muxconn.QUIC
	var watching sync.WaitGroup // the liveness watch, which ends with conn
	defer func() { _ = conn.CloseWithError(0, "client leaving"); watching.Wait() }()
	// A server that died without its close reaching us (or a path that
	// broke) goes silent: give up on it after the silence limit servers
	// apply to clients, not after the much longer idle timeout.
	liveness.CloseWhenStale(conn, codeStale, &watching)
	observed, err := wire.ToAddrPort(reply.GetObserved())
	if err != nil {
		return fmt.Errorf("server reply: observed address: %w", err)
	}
	connected()
	s.status.Set(Status{Connected: true, Transport: conn.Transport(), Observed: observed, Since: time.Now()})
	if s.cfg.Connected != nil {
		s.cfg.Connected()
	}
	s.cfg.Logger.Info("connected to control server", "server", s.cfg.ServerAddr, "transport", conn.Transport(), "observed", observed)

	ctx, cancel := context.WithCancelCause(ctx)
	// readState ends only when the stream does: wait for both goroutines
	// after cancelling and closing the connection, so neither outlives it.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { _ = conn.CloseWithError(0, "client leaving") }()
	defer cancel(nil)
	wg.Go(func() { cancel(s.sendState(ctx, stream, observed)) })
	wg.Go(func() { cancel(s.readState(stream)) })
	if s.onTCP {
		wg.Go(func() {
			if s.probeQUIC(ctx) {
				cancel(errQUICBack)
			}
		})
	}
	<-ctx.Done()
	return logs.Closed(context.Cause(ctx), "control server")
}

// errQUICBack ends a session on TCP once QUIC works again; the next
// connection takes the QUIC one the probe made.
var errQUICBack = errors.New("UDP passes again: moving back to QUIC")

// probeQUIC tries QUIC every QUICRetry until a handshake succeeds (true;
// the connection waits in s.next) or ctx ends (false).
func (s *Session) probeQUIC(ctx context.Context) bool {
	every := s.cfg.QUICRetry
	if every <= 0 {
		every = DefaultQUICRetry
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		}
		conn, err := s.dialQUIC(ctx, nil)
		if err != nil {
			s.cfg.Logger.Debug("QUIC to the control server still fails", "server", s.cfg.ServerAddr, logs.Err(err))
			continue
		}
		s.next = conn
		return true
	}
}

// dialQUIC dials the server over QUIC. When the server's host answers
// that nothing receives UDP at its port (see watchRefusal), refused is
// set at once, and a dial that fails then fails with a *refusedError: the
// server is not running, or a firewall rejects UDP. The dial itself goes
// on to its timeout all the same, since a server starting a moment after
// its client is reached by the handshake's next retransmission. refused
// may be nil.
func (s *Session) dialQUIC(ctx context.Context, refused *atomic.Bool) (*quic.Conn, error) {
	addr, err := net.ResolveUDPAddr("udp", s.cfg.ServerAddr)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", s.cfg.ServerAddr, err)
	}
	if refused == nil {
		refused = new(atomic.Bool)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.cfg.ProbeRefusal {
		wg.Go(func() {
			if watchRefusal(ctx, addr) {
				refused.Store(true)
			}
		})
	}
	conn, err := s.cfg.Transport.Dial(ctx, addr, s.tlsConfig(), s.cfg.QUIC)
	if err != nil {
		if refused.Load() {
			return nil, &refusedError{Addr: s.cfg.ServerAddr}
		}
		return nil, fmt.Errorf("dial %s: %w", s.cfg.ServerAddr, err)
	}
	return conn, nil
}

func (s *Session) tlsConfig() *tls.Config {
	tlsConf := s.cfg.TLS.Clone()
	tlsConf.NextProtos = []string{wire.ALPNControl}
	return tlsConf
}

// tcpHeadStart is how long a QUIC dial to the control server runs alone
// before TCP is dialed beside it, when a TCP transport is configured. A
// QUIC handshake takes a few round trips; waiting for it to time out (the
// handshake idle timeout, 5 s by default) would leave a client behind a
// firewall that drops UDP without its tunnels for that long at every
// start.
const tcpHeadStart = time.Second

// dial opens the connection: QUIC, or the TCP transport when QUIC has not
// succeeded within tcpHeadStart: it does not answer (UDP blocked) or its
// port is refused (the server is down, a firewall rejects UDP, or the
// server listens on TCP only). A QUIC handshake the server refused is not
// a reason to try TCP: the server is there, and TCP reaches the same one.
func (s *Session) dial(ctx context.Context) (muxconn.Conn, error) {
	if s.next != nil {
		conn := s.next
		s.next = nil
		s.cfg.Logger.Info("QUIC to the control server works again: leaving TCP", "server", s.cfg.ServerAddr)
		return muxconn.FromQUIC(conn), nil
	}
	switch {
	case s.cfg.TCP == nil:
		conn, err := s.dialQUIC(ctx, nil)
		if err != nil {
			return nil, dialFailure(s.cfg.ServerAddr, err)
		}
		return muxconn.FromQUIC(conn), nil
	case s.onTCP:
		return s.dialTCP(ctx)
	}
	return s.dialRace(ctx)
}

// dialFailure is the error of a failed connection attempt, on one line:
// each transport's error, after what they add up to when every one was
// refused (the server is not running).
func dialFailure(addr string, errs ...error) error {
	err := logs.Join(errs...)
	for _, e := range errs {
		if !errors.Is(e, syscall.ECONNREFUSED) {
			return err
		}
	}
	return fmt.Errorf("control server %s refuses connections (is it running?): %w", addr, err)
}

// dialTCP opens the connection over the TCP transport.
func (s *Session) dialTCP(ctx context.Context) (muxconn.Conn, error) {
	conn, err := s.cfg.TCP.Dial(ctx, s.tlsConfig())
	if err != nil {
		return nil, fmt.Errorf("dial %s over %s: %w", s.cfg.ServerAddr, s.cfg.TCP.Transport(), err)
	}
	return conn, nil
}

// isTimeout tells whether a QUIC dial failed for want of an answer.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *Session) connect(ctx context.Context) (muxconn.Conn, muxconn.Stream, *pb.HelloReply, error) {
	conn, err := s.dial(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	fail := func(err error) (muxconn.Conn, muxconn.Stream, *pb.HelloReply, error) {
		_ = conn.CloseWithError(0, "")
		return nil, nil, nil, err
	}
	stream, err := conn.OpenStream(ctx)
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
func (s *Session) sendState(ctx context.Context, stream muxconn.Stream, observed netip.AddrPort) error {
	locals := s.cfg.LocalAddrs(observed)
	for {
		a, changed := s.announce.Get()
		local := wireCandidates(a.Mapped, locals, s.cfg.Logger)
		msg := &pb.ClientState{LocalAddrs: local, Endpoints: a.Endpoints, Relays: a.Relays, PunchSecret: a.PunchSecret, RelayObservations: a.RelayObservations}
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

func (s *Session) readState(stream muxconn.Stream) error {
	for {
		var msg pb.ServerState
		if err := wire.Read(stream, &msg, wire.MaxControlMessage); err != nil {
			return err
		}
		if obs, err := wire.ToAddrPort(msg.GetObserved()); err == nil {
			s.status.Update(func(st Status) Status { st.Observed = obs; return st })
		}
		s.onState(decodeState(&msg, s.cfg.Logger))
	}
}
