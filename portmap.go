package connet

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/p2pconnet/connet/internal/controlclient"
	"github.com/p2pconnet/connet/internal/portmap"
)

// PortMappingStatus is the client's port mapping on its NAT gateway.
type PortMappingStatus struct {
	// Mode is the nat-pmp option.
	Mode string `json:"mode"`
	// Protocol is "nat-pmp", "pcp" or "upnp"; empty while no mapping is
	// in force (none found yet, or the gateway has none).
	Protocol string `json:"protocol,omitempty"`
	Gateway  string `json:"gateway,omitempty"`
	// External is the address and port the gateway forwards to the
	// client's socket, offered to peers as a candidate.
	External string `json:"external,omitempty"`
	// Expires is when the gateway drops the mapping unless the client
	// renews it (it renews well before).
	Expires *time.Time `json:"expires,omitempty"`
}

// newPortMapper returns the mapper the client's mode and socket call for,
// or nil: port mapping needs an operating system UDP socket that is not
// bound to loopback (a simulated network has no gateway to ask).
func (c *Client) newPortMapper() *portmap.Mapper {
	mode := c.cfg.natPMP
	if mode == NatPMPDisabled {
		return nil
	}
	uc, ok := c.udp.(*net.UDPConn)
	if !ok {
		return nil
	}
	la := uc.LocalAddr().(*net.UDPAddr).AddrPort()
	if la.Addr().Unmap().IsLoopback() || la.Port() == 0 {
		return nil
	}
	cfg := portmap.Config{
		Protocols: portmap.Auto,
		Port:      la.Port(),
		Gateway:   portmap.SystemGateway(c.cfg.network),
		Network:   c.cfg.network,
		Logger:    c.cfg.logger.With("component", "portmap"),
	}
	switch mode {
	case NatPMPDial:
		cfg.Gateway = portmap.DialGateway(c.cfg.network, c.cfg.controlAddr)
	case NatPMPOnlyNATPMP:
		cfg.Protocols = []portmap.Protocol{portmap.NATPMP}
	case NatPMPOnlyPCP:
		cfg.Protocols = []portmap.Protocol{portmap.PCP}
	case NatPMPOnlyUPnP:
		cfg.Protocols = []portmap.Protocol{portmap.UPnP}
	}
	return portmap.New(cfg)
}

// runPortMap keeps the client's port mapped once the control server is
// reached, and announces the mapped address as a candidate whenever it
// changes. A server reached over loopback shares the client's host: the
// gateway is not between them, and is not asked.
func (c *Client) runPortMap(ctx context.Context) error {
	st, err := waitConnected(ctx, c)
	if err != nil {
		return nil // closing
	}
	if st.Observed.Addr().Unmap().IsLoopback() {
		c.cfg.logger.Debug("no port mapping: the control server is reached over loopback")
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.announceMapping(ctx)
	}()
	err = c.portmap.Run(ctx)
	<-done
	return err
}

// announceMapping puts the mapped address among the client's candidates
// until ctx ends.
func (c *Client) announceMapping(ctx context.Context) {
	var last netip.AddrPort
	follow(ctx, c.portmap.Mapping, func(m portmap.Mapping) {
		if m.External == last {
			return
		}
		last = m.External
		var mapped []netip.AddrPort
		if m.Valid() {
			mapped = []netip.AddrPort{m.External}
		}
		c.cfg.logger.Debug("announcing port mapping", "external", m.External)
		c.announce.Update(func(a controlclient.Announcement) controlclient.Announcement {
			a.Mapped = mapped
			return a
		})
	})
}

// portMappingStatus shows the mapping, nil when port mapping is off.
func (c *Client) portMappingStatus() *PortMappingStatus {
	if c.portmap == nil {
		return nil
	}
	ps := &PortMappingStatus{Mode: string(c.cfg.natPMP)}
	m, _ := c.portmap.Mapping()
	if m.Valid() {
		ps.Protocol = string(m.Protocol)
		ps.Gateway = m.Gateway.String()
		ps.External = m.External.String()
		exp := m.Expires
		ps.Expires = &exp
	}
	return ps
}
