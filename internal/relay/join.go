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
	"sync/atomic"
	"time"

	"github.com/p2pconnet/connet/internal/backoff"
	"github.com/p2pconnet/connet/internal/liveness"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/network"
	"github.com/p2pconnet/connet/internal/notify"
	"github.com/p2pconnet/connet/internal/store"
	"github.com/p2pconnet/connet/internal/untrusted"
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
// the first success (an error wrapping untrusted.ErrCertificate). While the server is unreachable the relay goes on
// serving the clients it has, on the grants they hold.
func Join(ctx context.Context, cfg JoinConfig) error {
	bo := backoff.Backoff{Min: joinRetryMin, Max: joinRetryMax}
	// As for clients: a certificate that fails verification before the
	// first success is a configuration mistake and ends the relay.
	reached := false
	for {
		joined, err := joinOnce(ctx, &cfg, &bo)
		reached = reached || joined
		if ctx.Err() != nil {
			return nil
		}
		cfg.setStatus(JoinStatus{LastError: err.Error()})
		if errors.Is(err, ErrRefused) {
			cfg.Logger.Error("control server refused this relay", "err", err)
			return err
		}
		if !reached {
			if cerr := untrusted.Check(cfg.ControlAddr, err); cerr != nil {
				cfg.Logger.Error("control server's certificate is not trusted", "control", cfg.ControlAddr, "err", cerr)
				return cerr
			}
		}
		delay := bo.Next()
		if reached {
			cfg.Logger.Warn("control connection lost, reconnecting", "control", cfg.ControlAddr, "retry_in_ms", logs.Millis(delay), logs.Err(err))
		} else {
			cfg.Logger.Warn("cannot reach control server, retrying", "control", cfg.ControlAddr, "retry_in_ms", logs.Millis(delay), logs.Err(err))
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil
		}
	}
}

// joinOnce joins and stays joined until the connection ends; joined tells
// whether the control server accepted the relay.
func joinOnce(ctx context.Context, cfg *JoinConfig, bo *backoff.Backoff) (joined bool, err error) {
	addr, err := net.ResolveUDPAddr("udp", cfg.ControlAddr)
	if err != nil {
		return false, fmt.Errorf("resolve %s: %w", cfg.ControlAddr, err)
	}
	udp, err := network.Or(cfg.Network).ListenPacket(ctx, "udp", ":0")
	if err != nil {
		return false, err
	}
	tr := &quic.Transport{Conn: udp}
	defer func() { _ = tr.Close(); _ = udp.Close() }()
	tlsConf := cfg.TLS.Clone()
	tlsConf.NextProtos = []string{wire.ALPNRelayControl}
	conn, err := tr.Dial(ctx, addr, tlsConf, cfg.QUIC)
	if err != nil {
		return false, fmt.Errorf("dial %s: %w", cfg.ControlAddr, err)
	}
	defer func() { _ = conn.CloseWithError(0, "relay leaving") }()
	stream, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return false, err
	}
	_ = stream.SetDeadline(time.Now().Add(cfg.QUIC.HandshakeIdleTimeout))
	hello := &pb.RelayHello{Token: cfg.Token, Metadata: cfg.Metadata, Hostports: cfg.Hostports, BuildVersion: cfg.BuildVersion}
	if err := wire.Write(stream, hello); err != nil {
		return false, err
	}
	var reply pb.RelayHelloReply
	if err := wire.Read(stream, &reply, wire.MaxControlMessage); err != nil {
		return false, err
	}
	if e := wire.FromPB(reply.GetError()); e != nil {
		return false, fmt.Errorf("%w: %w", ErrRefused, e)
	}
	if len(reply.GetGrantKey()) != ed25519.PublicKeySize {
		return false, fmt.Errorf("control server sent a grant key of %d bytes", len(reply.GetGrantKey()))
	}
	if err := cfg.Key.set(reply.GetGrantKey()); err != nil {
		cfg.Logger.Warn("cannot remember the grant key", logs.Err(err))
	}
	// A control server that died without its close reaching us goes
	// silent: rejoin after the silence limit, not the idle timeout, or
	// clients are not offered this relay all that time.
	liveness.CloseWhenStale(muxconn.FromQUIC(conn), codeStale)
	bo.Reset()
	cfg.setStatus(JoinStatus{Connected: true})
	cfg.Logger.Info("relay joined the control server", "control", cfg.ControlAddr, "hostports", cfg.Hostports)
	select {
	case <-conn.Context().Done():
		return true, logs.Closed(context.Cause(conn.Context()), "control server")
	case <-ctx.Done():
		return true, nil
	}
}
