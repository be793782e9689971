// Package portmap asks the client's NAT gateway to forward a UDP port to
// the client's socket, with NAT-PMP (RFC 6886), PCP (RFC 6887) or
// UPnP-IGD, keeps the mapping alive, and removes it at shutdown. The mapped
// external address is then one more candidate that peers can dial: it
// makes a direct path possible even behind a NAT that maps every
// destination to a new port.
//
// Gateways and other LAN hosts may be broken or hostile: every answer is
// checked before a mapping is used or announced (checkAnswer), and UPnP is
// spoken to the gateway's address alone, by a bounded client of our own
// (upnpClient).
package portmap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/network"
	"github.com/p2pconnet/connet/internal/notify"
)

// Protocol is a port mapping protocol.
type Protocol string

// The protocols, in the order Auto tries them: NAT-PMP first since the
// option is named after it and it is the simplest; PCP next, its
// successor on the same port; UPnP last, as its discovery waits seconds
// for answers to a multicast search.
const (
	NATPMP Protocol = "nat-pmp"
	PCP    Protocol = "pcp"
	UPnP   Protocol = "upnp"
)

// Auto is every protocol in the order they are tried.
var Auto = []Protocol{NATPMP, PCP, UPnP}

// Mapping is a port mapping in force.
type Mapping struct {
	Protocol Protocol
	Gateway  netip.Addr
	// External is the address and port the gateway forwards to the
	// client's socket.
	External netip.AddrPort
	// Expires is when the gateway drops the mapping unless renewed.
	Expires time.Time
}

// Valid tells whether m is a mapping (the zero Mapping is none).
func (m Mapping) Valid() bool { return m.External.IsValid() }

// Timing of the mapper.
const (
	// requestLifetime is the lifetime asked for; RFC 6886 recommends an
	// hour or two, and gateways may grant less.
	requestLifetime = 2 * time.Hour
	// maxRenew bounds the wait between renewals: each renewal also reads
	// the gateway's epoch, which tells whether it restarted (and lost the
	// mapping) in between.
	maxRenew = time.Minute
	// retryNone is how long to wait after no protocol worked: a gateway
	// without port mapping rarely gains it, but the network may change.
	retryNone = 5 * time.Minute
	// requestTimeout bounds one protocol's attempt, retries included.
	requestTimeout = 2 * time.Second
	// deleteTimeout bounds the deletion at shutdown.
	deleteTimeout = time.Second
)

// Config tells the mapper what to map and how to find the gateway.
type Config struct {
	// Protocols are tried in order until one maps the port.
	Protocols []Protocol
	// Port is the client's UDP port to map.
	Port uint16
	// Gateway finds the gateway and the local address facing it.
	Gateway func(ctx context.Context) (gateway, local netip.Addr, err error)
	// Network opens the sockets that speak to the gateway; nil means the
	// operating system's.
	Network network.Network
	Logger  *slog.Logger
}

// Mapper keeps one UDP port mapped.
type Mapper struct {
	cfg     Config
	current notify.Value[Mapping]
}

// New returns a mapper; Run does the work.
func New(cfg Config) *Mapper {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Network = network.Or(cfg.Network)
	return &Mapper{cfg: cfg}
}

// Mapping returns the mapping in force (the zero Mapping if none) and a
// channel closed when it changes.
func (m *Mapper) Mapping() (Mapping, <-chan struct{}) { return m.current.Get() }

// client is one protocol's conversation with a gateway.
type client interface {
	// mapPort creates or renews the mapping of the internal port,
	// suggesting the external port ext (0 for any).
	mapPort(ctx context.Context, port, ext uint16, lifetime time.Duration) (result, error)
	// unmap deletes the mapping.
	unmap(ctx context.Context, port, ext uint16) error
}

// result is a gateway's answer to a mapping request.
type result struct {
	external netip.AddrPort
	lifetime time.Duration
	// epoch is the gateway's seconds since it started, for NAT-PMP and
	// PCP; hasEpoch is false for UPnP.
	epoch    uint32
	hasEpoch bool
}

func (m *Mapper) newClient(p Protocol, gw, local netip.Addr) client {
	switch p {
	case NATPMP:
		return newNATPMP(m.cfg.Network, gw, local)
	case PCP:
		return newPCP(m.cfg.Network, gw, local)
	default:
		return newUPnP(m.cfg.Network, gw, local)
	}
}

// Run keeps the port mapped until ctx ends, then deletes the mapping.
func (m *Mapper) Run(ctx context.Context) error {
	log := m.cfg.Logger
	reported := false // "no port mapping" is logged once, not every retry
	for {
		c, res, gw, p, err := m.establish(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if !reported {
				log.Info("no port mapping: the client's own NAT mappings and the relays are used", "err", err)
				reported = true
			} else {
				log.Debug("still no port mapping", "err", err)
			}
			if !sleep(ctx, retryNone) {
				return nil
			}
			continue
		}
		reported = false
		m.keep(ctx, c, p, gw, res)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// establish finds the gateway and tries the protocols in order.
func (m *Mapper) establish(ctx context.Context) (client, result, netip.Addr, Protocol, error) {
	gw, local, err := m.cfg.Gateway(ctx)
	if err != nil {
		return nil, result{}, gw, "", fmt.Errorf("find gateway: %w", err)
	}
	var errs []error
	for _, p := range m.cfg.Protocols {
		c := m.newClient(p, gw, local)
		rctx, cancel := context.WithTimeout(ctx, timeoutOf(p))
		res, err := mapChecked(rctx, c, m.cfg.Port, m.cfg.Port)
		cancel()
		if err == nil {
			return c, res, gw, p, nil
		}
		if errors.Is(err, errBadAnswer) {
			// As far as the gateway listens, it keeps no mapping that
			// is not used.
			dctx, cancel := context.WithTimeout(ctx, deleteTimeout)
			_ = c.unmap(dctx, m.cfg.Port, res.external.Port())
			cancel()
		}
		if ctx.Err() != nil {
			return nil, result{}, gw, "", ctx.Err()
		}
		m.cfg.Logger.Debug("port mapping failed", "protocol", p, "gateway", gw, "err", err)
		errs = append(errs, fmt.Errorf("%s: %w", p, err))
	}
	return nil, result{}, gw, "", fmt.Errorf("gateway %s: %w", gw, logs.Join(errs...))
}

// keep renews the mapping until ctx ends (then deletes it) or it cannot
// be renewed before it expires.
func (m *Mapper) keep(ctx context.Context, c client, p Protocol, gw netip.Addr, res result) {
	log := m.cfg.Logger
	set := func(res result, at time.Time) {
		m.current.Set(Mapping{Protocol: p, Gateway: gw, External: res.external, Expires: at.Add(res.lifetime)})
	}
	last, lastAt := res, time.Now()
	set(last, lastAt)
	log.Info("port mapped", "protocol", p, "gateway", gw, "external", res.external, "lifetime", res.lifetime)
	var announced <-chan struct{}
	if p != UPnP {
		actx, cancel := context.WithCancel(ctx)
		var wait func()
		announced, wait = listenAnnouncements(actx, m.cfg.Network, gw, log)
		defer wait()
		defer cancel()
	}
	defer m.release(ctx, c, p)
	for {
		// At least a second apart, whatever lifetime a gateway grants.
		renew := max(min(last.lifetime/2, maxRenew), time.Second)
		if !waitRenewal(ctx, lastAt.Add(renew), announced, lastAt, log) {
			return
		}
		res, ok := m.renew(ctx, c, p, last, lastAt)
		if !ok {
			return
		}
		now := time.Now()
		logRenewal(log, p, last, lastAt, res, now)
		set(res, now)
		last, lastAt = res, now
	}
}

// renew renews the mapping last (made or renewed at lastAt), retrying
// each second until it expires; false if ctx ended or it expired first.
func (m *Mapper) renew(ctx context.Context, c client, p Protocol, last result, lastAt time.Time) (result, bool) {
	expires := lastAt.Add(last.lifetime)
	for {
		rctx, cancel := context.WithTimeout(ctx, timeoutOf(p))
		res, err := mapChecked(rctx, c, m.cfg.Port, last.external.Port())
		cancel()
		switch {
		case ctx.Err() != nil:
			return result{}, false
		case err == nil:
			return res, true
		case time.Now().After(expires):
			m.cfg.Logger.Warn("port mapping lost: not renewed before it expired", "protocol", p, "external", last.external, "err", err)
			return result{}, false
		}
		m.cfg.Logger.Debug("port mapping renewal failed, retrying", "protocol", p, "err", err)
		if !sleep(ctx, time.Second) {
			return result{}, false
		}
	}
}

// logRenewal logs what a renewal's answer res tells beside the mapping
// last (made or renewed at lastAt): the gateway restarted, or moved it.
func logRenewal(log *slog.Logger, p Protocol, last result, lastAt time.Time, res result, now time.Time) {
	if last.hasEpoch && res.hasEpoch && EpochReset(last.epoch, lastAt, res.epoch, now) {
		// The renewal was a new request to a gateway that had
		// forgotten the mapping, so it is made again already.
		log.Info("gateway restarted (its epoch went back): port mapping redone", "protocol", p, "external", res.external,
			"epoch_before", last.epoch, "epoch", res.epoch)
	}
	if res.external != last.external {
		log.Info("port mapping changed", "protocol", p, "external", res.external, "before", last.external)
	}
}

// release withdraws the mapping in force, and deletes it at the gateway
// when the mapper stops (ctx ended) rather than losing it.
func (m *Mapper) release(ctx context.Context, c client, p Protocol) {
	cur := m.current.Load()
	m.current.Set(Mapping{})
	if ctx.Err() == nil || !cur.Valid() {
		return
	}
	dctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
	defer cancel()
	if err := c.unmap(dctx, m.cfg.Port, cur.External.Port()); err != nil {
		m.cfg.Logger.Debug("port mapping not deleted", "protocol", p, "err", err)
		return
	}
	m.cfg.Logger.Debug("port mapping deleted", "protocol", p, "external", cur.External)
}

// waitRenewal waits until at, or for an announcement from the gateway
// (which may mean it restarted and lost the mapping) that comes a second
// or more after the last renewal: gateways repeat announcements, and one
// renewal answers a burst of them. It tells whether ctx is still alive.
func waitRenewal(ctx context.Context, at time.Time, announced <-chan struct{}, lastAt time.Time, log *slog.Logger) bool {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-announced:
			if time.Since(lastAt) >= time.Second {
				log.Debug("gateway announcement: renewing at once")
				return true
			}
		case <-ctx.Done():
			return false
		}
	}
}

// timeoutOf bounds one attempt of protocol p.
func timeoutOf(p Protocol) time.Duration {
	if p == UPnP {
		return upnpTimeout
	}
	return requestTimeout
}

// EpochReset tells whether a gateway's epoch (seconds since it started)
// shows that it restarted between two answers, with the rule of RFC 6886
// section 3.6 and RFC 6887 section 8.5: the epoch went back by more than a
// second, or it advanced at a pace the client's clock does not match
// (with 1/16 of slack for clock drift and 2 s for rounding).
func EpochReset(prev uint32, prevAt time.Time, cur uint32, curAt time.Time) bool {
	if int64(cur)+1 < int64(prev) {
		return true
	}
	clientDelta := curAt.Sub(prevAt).Seconds()
	serverDelta := float64(int64(cur) - int64(prev))
	return clientDelta+2 < serverDelta-serverDelta/16 || serverDelta+2 < clientDelta-clientDelta/16
}

// sleep waits d or until ctx ends; it tells whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
