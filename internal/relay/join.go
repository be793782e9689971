package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pconnet/connet/internal/liveness"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/network"
	"github.com/p2pconnet/connet/internal/notify"
	"github.com/p2pconnet/connet/internal/redial"
	"github.com/p2pconnet/connet/internal/store"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
)

// ErrRefused reports that the control server refused the relay's token or
// address; retrying will not help.
var ErrRefused = errors.New("control server refused the relay")

// GrantKey holds the control server's grant key. It is kept in a file so
// that a relay restarted while the control server is down still admits
// clients.
type GrantKey struct {
	file string
	key  atomic.Pointer[ed25519.PublicKey]
}

// LoadGrantKey reads the key remembered in file, if any.
func LoadGrantKey(file string) *GrantKey {
	k := &GrantKey{file: file}
	if b, err := os.ReadFile(file); err == nil && len(b) == ed25519.PublicKeySize {
		key := ed25519.PublicKey(b)
		k.key.Store(&key)
	}
	return k
}

// Get returns the key, nil while unknown.
func (k *GrantKey) Get() ed25519.PublicKey {
	if p := k.key.Load(); p != nil {
		return *p
	}
	return nil
}

func (k *GrantKey) set(key ed25519.PublicKey) error {
	k.key.Store(&key)
	if k.file == "" {
		return nil
	}
	return store.WriteFile(k.file, key)
}

// JoinConfig describes how a relay joins its control server.
type JoinConfig struct {
	ControlAddr string
	// TLS holds the relay's identity certificate and the control server's
	// roots and name; the ALPN is set here.
	TLS          *tls.Config
	QUIC         *quic.Config
	Token        string
	Metadata     string
	BuildVersion string
	Hostports    []string
	Key          *GrantKey
	Logger       *slog.Logger
	// Network opens the socket the relay dials the control server from
	// (a new one per attempt); nil means the operating system's.
	Network network.Network
	// Status, if set, is kept up to date with the connection's state, for
	// the relay's status page.
	Status *notify.Value[JoinStatus]
}

// JoinStatus is the state of a relay's connection to its control server.
type JoinStatus struct {
	Connected bool
	// LastError is why the last attempt failed or the connection ended,
	// cleared by a successful join.
	LastError string
	// Since is when the state last changed.
	Since time.Time
}

func (cfg *JoinConfig) setStatus(st JoinStatus) {
	if cfg.Status != nil {
		st.Since = time.Now()
		cfg.Status.Set(st)
	}
}

// Reconnect bounds, as for clients.
const (
	joinRetryMin = 200 * time.Millisecond
	joinRetryMax = 15 * time.Second
)

// Join keeps the relay registered at the control server until ctx ends, the
// server refuses it, or the server's certificate fails verification before
// the first success (an error wrapping untrusted.ErrCertificate). While the
// server is unreachable the relay goes on serving the clients it has, on
// the grants they hold.
func Join(ctx context.Context, cfg JoinConfig) error {
	loop := redial.Loop{
		Min:          joinRetryMin,
		Max:          joinRetryMax,
		Logger:       cfg.Logger.With("control", cfg.ControlAddr),
		Unreached:    "cannot reach control server, retrying",
		Lost:         "control connection lost, reconnecting",
		Refused:      ErrRefused,
		RefusedMsg:   "control server refused this relay",
		TrustAddr:    cfg.ControlAddr,
		UntrustedMsg: "control server's certificate is not trusted",
		Failed: func(err error) slog.Level {
			cfg.setStatus(JoinStatus{LastError: err.Error()})
			return slog.LevelWarn
		},
	}
	err := loop.Run(ctx, func(ctx context.Context, joined func()) error { return joinOnce(ctx, &cfg, joined) })
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// joinOnce joins and stays joined until the connection ends; it calls
// joined once the control server accepted the relay.
func joinOnce(ctx context.Context, cfg *JoinConfig, joined func()) error {
	conn, leave, err := dialControl(ctx, cfg)
	if err != nil {
		return err
	}
	var watching sync.WaitGroup // the liveness watch, which ends with conn
	defer func() { leave(); watching.Wait() }()
	key, err := sayHello(ctx, cfg, conn)
	if err != nil {
		return err
	}
	if err := cfg.Key.set(key); err != nil {
		cfg.Logger.Warn("cannot remember the grant key", logs.Err(err))
	}
	// A control server that died without its close reaching us goes
	// silent: rejoin after the silence limit, not the idle timeout, or
	// clients are not offered this relay all that time.
	liveness.CloseWhenStale(muxconn.FromQUIC(conn), codeStale, &watching)
	joined()
	cfg.setStatus(JoinStatus{Connected: true})
	cfg.Logger.Info("relay joined the control server", "control", cfg.ControlAddr, "hostports", cfg.Hostports)
	select {
	case <-conn.Context().Done():
		return logs.Closed(context.Cause(conn.Context()), "control server")
	case <-ctx.Done():
		return nil
	}
}

// dialControl dials the control server over QUIC, from a socket of its
// own; leave closes the connection and the socket.
func dialControl(ctx context.Context, cfg *JoinConfig) (conn *quic.Conn, leave func(), err error) {
	addr, err := net.ResolveUDPAddr("udp", cfg.ControlAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve %s: %w", cfg.ControlAddr, err)
	}
	udp, err := network.Or(cfg.Network).ListenPacket(ctx, "udp", ":0")
	if err != nil {
		return nil, nil, err
	}
	tr := &quic.Transport{Conn: udp}
	closeSocket := func() { _ = tr.Close(); _ = udp.Close() }
	tlsConf := cfg.TLS.Clone()
	tlsConf.NextProtos = []string{wire.ALPNRelayControl}
	conn, err = tr.Dial(ctx, addr, tlsConf, cfg.QUIC)
	if err != nil {
		closeSocket()
		return nil, nil, fmt.Errorf("dial %s: %w", cfg.ControlAddr, err)
	}
	return conn, func() { _ = conn.CloseWithError(0, "relay leaving"); closeSocket() }, nil
}

// sayHello sends the relay's hello and returns the grant key the control
// server answers with.
func sayHello(ctx context.Context, cfg *JoinConfig, conn *quic.Conn) (ed25519.PublicKey, error) {
	stream, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	_ = stream.SetDeadline(time.Now().Add(cfg.QUIC.HandshakeIdleTimeout))
	hello := &pb.RelayHello{Token: cfg.Token, Metadata: cfg.Metadata, Hostports: cfg.Hostports, BuildVersion: cfg.BuildVersion}
	if err := wire.Write(stream, hello); err != nil {
		return nil, err
	}
	var reply pb.RelayHelloReply
	if err := wire.Read(stream, &reply, wire.MaxControlMessage); err != nil {
		return nil, err
	}
	if e := wire.FromPB(reply.GetError()); e != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, e)
	}
	if len(reply.GetGrantKey()) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("control server sent a grant key of %d bytes", len(reply.GetGrantKey()))
	}
	return reply.GetGrantKey(), nil
}
