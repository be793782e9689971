package connet

import (
	"context"
	"net/netip"
	"sync/atomic"

	"github.com/p2pconnet/connet/internal/controlclient"
	"github.com/p2pconnet/connet/internal/direct"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// connected returns the session's hook for every control connection: it
// counts each after the first as a reconnect, and tells the relays which
// transport reaches the servers (over TCP, relays are dialed over TCP).
func (c *Client) connected() func() {
	var connected atomic.Bool
	return func() {
		if connected.Swap(true) {
			c.metrics.Reconnected()
		}
		st, _ := c.session.Status()
		c.relays.SetTransport(st.Transport)
	}
}

// localAddrs lists the client's own addresses for the control server.
// Loopback addresses are offered only when the server itself is reached
// over loopback, i.e. when peers may be on this host.
func (c *Client) localAddrs(observed netip.AddrPort) []netip.AddrPort {
	addrs, err := direct.LocalAddrs(c.udp.LocalAddr(), observed.Addr().IsLoopback())
	if err != nil {
		c.cfg.logger.Warn("cannot list local addresses", logs.Err(err))
	}
	return addrs
}

// applyServerState takes the control server's latest word.
func (c *Client) applyServerState(st controlclient.State) {
	c.registry.Apply(st.Peers)
	c.relays.Apply(st.Relays, st.Grant)
	if c.nat.Swap(st.NAT) != st.NAT && st.NAT != peer.NATUnknown {
		c.cfg.logger.Info("NAT mapping detected", "mapping", string(st.NAT))
	}
	c.endpoints.Apply(st.Peers, st.Refused)
}

// announceEndpoints tells the control server the client's endpoints.
func (c *Client) announceEndpoints(eps []*pb.Endpoint) {
	c.announce.Update(func(a controlclient.Announcement) controlclient.Announcement {
		a.Endpoints = eps
		return a
	})
}

// announceRelays tells the control server which relays the client is at,
// whenever that changes, so peers know where to reach it.
func (c *Client) announceRelays(ctx context.Context) error {
	follow(ctx, c.relays.Connected, func(ids []identity.ID) {
		relays := make([][]byte, len(ids))
		for i, id := range ids {
			relays[i] = id[:]
		}
		c.announce.Update(func(a controlclient.Announcement) controlclient.Announcement {
			a.Relays = relays
			return a
		})
	})
	return nil
}

// announceObservations passes on to the control server where the relays
// see the client's socket, signed by each relay, whenever that changes:
// the server works out from them how the client's NAT maps, and tells the
// client and its peers (see package observation).
func (c *Client) announceObservations(ctx context.Context) error {
	follow(ctx, c.relays.Observed, func(observed []*pb.SignedObservation) {
		c.announce.Update(func(a controlclient.Announcement) controlclient.Announcement {
			a.RelayObservations = observed
			return a
		})
	})
	return nil
}

// follow calls apply with what get returns, now and after each change it
// signals, until ctx ends.
func follow[T any](ctx context.Context, get func() (T, <-chan struct{}), apply func(T)) {
	for {
		v, changed := get()
		apply(v)
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}
