package natlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/portmap/pcp"
	"golang.org/x/net/ipv4"
)

// GatewayConfig selects what the lab gateway answers.
type GatewayConfig struct {
	NATPMP, PCP, UPnP bool
	// MaxLifetime caps the lifetime granted to a mapping, so tests see
	// renewals (and a restart's lost mapping come back) within seconds.
	// Zero means two hours.
	MaxLifetime time.Duration
	// Misbehave makes the answers lie, for tests of clients' checks.
	Misbehave GatewayMisbehavior
}

// LabGateway is the gateway of topologies that have one: every protocol,
// and lifetimes of at most 8 s so that clients renew every few seconds and
// a restart's lost mapping comes back within a test's bounds.
func LabGateway() GatewayConfig {
	return GatewayConfig{NATPMP: true, PCP: true, UPnP: true, MaxLifetime: 8 * time.Second}
}

// GatewayMapping is a port mapping the gateway holds.
type GatewayMapping struct {
	Protocol string // "nat-pmp", "pcp" or "upnp"
	Internal netip.AddrPort
	External netip.AddrPort
	Expires  time.Time
	nonce    [12]byte // PCP's
}

// Gateway is a port mapping gateway on a lab NAT router: it answers
// NAT-PMP (RFC 6886) and PCP (RFC 6887) on the router's LAN address, port
// 5351, and UPnP-IGD (SSDP on 239.255.255.250:1900 of the LAN, then
// HTTP), and forwards each mapped port with real nftables rules: a DNAT of
// the external port on the WAN address to the client, and an SNAT of the
// client's port to the external one, so the mapping holds both ways as
// RFC 6887 section 11 asks of a MAP. Mappings are removed when their
// lifetime ends or the client deletes them.
//
// It stands in for a home router's miniupnpd, which refuses to forward on
// the documentation addresses the lab uses.
type Gateway struct {
	t      testing.TB
	cfg    GatewayConfig
	router *Host
	lan    netip.Addr // the router's LAN address, where it answers
	wan    netip.Addr // the router's WAN address, the mappings' address

	pmp     *net.UDPConn // port 5351, NAT-PMP and PCP
	closers []io.Closer  // the sockets, closed at the end

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	start time.Time // of the epoch; a restart resets it
	maps  []*GatewayMapping
	// applied is the ruleset last loaded, to skip reloading the same.
	applied string
}

// Epoch NAT-PMP and PCP report: seconds since the gateway (re)started.
func (g *Gateway) epochLocked() uint32 { return uint32(time.Since(g.start) / time.Second) }

// gatewayMark marks packets from the WAN to a mapped port, which the
// router's filter lets in.
const gatewayMark = "0x706d"

// StartGateway runs a gateway on the NAT router in front of client (which
// must be behind one) until the test ends.
func (l *Lab) StartGateway(t testing.TB, client *Host, cfg GatewayConfig) *Gateway {
	t.Helper()
	if client.NAT == nil {
		t.Fatalf("natlab: %s is not behind a NAT", client.Name)
	}
	if cfg.MaxLifetime == 0 {
		cfg.MaxLifetime = 2 * time.Hour
	}
	g := &Gateway{t: t, cfg: cfg, router: client.NAT.Router, lan: client.NAT.Gateway, wan: client.NAT.Router.Addr}
	// The gateway has been up for a day when the test starts, as a
	// home router would: a restart seconds after the start could not be
	// told from the epoch (RFC 6886 section 3.6 compares paces).
	g.start = time.Now().Add(-24 * time.Hour)
	g.ctx, g.cancel = context.WithCancel(context.Background())
	t.Cleanup(g.stop)
	// Let forwarded ports through the router's filter, which otherwise
	// drops whatever the WAN sends unsolicited.
	err := g.router.nftApply(context.Background(), `
insert rule ip natlab wan_in iifname "wan" meta mark `+gatewayMark+` accept
insert rule ip natlab forward iifname "wan" ct status dnat accept
`)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.applyLocked(); err != nil {
		t.Fatal(err)
	}
	if cfg.NATPMP || cfg.PCP {
		if g.pmp, err = g.router.ListenUDP(netip.AddrPortFrom(g.lan, pcp.Port).String()); err != nil {
			t.Fatal(err)
		}
		g.closers = append(g.closers, g.pmp)
		g.goRun(g.servePMP)
	}
	if cfg.UPnP {
		if err := g.startUPnP(); err != nil {
			t.Fatal(err)
		}
	}
	g.goRun(g.expire)
	t.Logf("natlab: gateway on %s (%s), NAT-PMP %v, PCP %v, UPnP %v", g.router.Name, g.lan, cfg.NATPMP, cfg.PCP, cfg.UPnP)
	return g
}

func (g *Gateway) goRun(fn func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn()
	}()
}

func (g *Gateway) stop() {
	g.cancel()
	for _, c := range g.closers {
		_ = c.Close()
	}
	g.wg.Wait()
}

// Mappings returns the mappings in force.
func (g *Gateway) Mappings() []GatewayMapping {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]GatewayMapping, len(g.maps))
	for i, m := range g.maps {
		out[i] = *m
	}
	return out
}

// WaitMapping waits until the gateway holds a mapping for internal, for at
// most limit, and returns it.
func (g *Gateway) WaitMapping(t testing.TB, internal netip.AddrPort, limit time.Duration) GatewayMapping {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		for _, m := range g.Mappings() {
			if m.Internal == internal {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("natlab: no mapping for %s on the gateway within %v (mappings: %v)", internal, limit, g.Mappings())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart simulates a reboot of the gateway: it forgets every mapping
// (and its forwarding rules) and starts a new epoch, so clients that renew
// see the epoch go back. The router's connection tracking is flushed too
// (with conntrack(8), when installed), as a reboot empties it: flows that
// went through a mapping need the mapping back.
func (g *Gateway) Restart(t testing.TB) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.maps = nil
	g.start = time.Now()
	if err := g.applyLocked(); err != nil {
		t.Fatal(err)
	}
	flushed := "kept (no conntrack(8))"
	if _, err := exec.LookPath("conntrack"); err == nil {
		if out, err := g.router.Run(context.Background(), "conntrack", "-F"); err != nil {
			t.Fatalf("natlab: flush conntrack on %s: %v: %s", g.router.Name, err, out)
		}
		flushed = "flushed"
	}
	t.Logf("natlab: gateway on %s restarted: no mappings, epoch 0, connection tracking %s", g.router.Name, flushed)
	if g.pmp != nil {
		g.goRun(g.announce)
	}
}

// announce tells the LAN that the gateway restarted, as RFC 6886 section
// 3.2.1 (NAT-PMP: the external address response) and RFC 6887 section
// 14.1.3 (PCP: an ANNOUNCE response) ask: to 224.0.0.1:5350, from port
// 5351, repeated at 250 ms, doubling (the RFCs' ten times are cut to four
// here: the lab's LAN does not lose packets).
func (g *Gateway) announce() {
	var ifi *net.Interface
	err := g.router.Do(func() error {
		var err error
		ifi, err = net.InterfaceByName("lan")
		return err
	})
	if err != nil {
		g.t.Errorf("natlab: gateway announce: %v", err)
		return
	}
	pc := ipv4.NewPacketConn(g.pmp)
	if err := pc.SetMulticastInterface(ifi); err != nil {
		g.t.Errorf("natlab: gateway announce: %v", err)
		return
	}
	group := &net.UDPAddr{IP: net.IPv4(224, 0, 0, 1), Port: 5350}
	wait := 250 * time.Millisecond
	for range 4 {
		epoch := g.epoch()
		if g.cfg.NATPMP {
			_, _ = g.pmp.WriteTo(pmpAddressResponse(pmpSuccess, epoch, g.wan.As4()), group)
		}
		if g.cfg.PCP {
			_, _ = g.pmp.WriteTo(pcpAnnounce(epoch), group)
		}
		select {
		case <-time.After(wait):
		case <-g.ctx.Done():
			return
		}
		wait *= 2
	}
}

// expire removes mappings whose lifetime has ended.
func (g *Gateway) expire() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-tick.C:
		}
		g.mu.Lock()
		now := time.Now()
		n := len(g.maps)
		g.maps = slices.DeleteFunc(g.maps, func(m *GatewayMapping) bool {
			if now.After(m.Expires) {
				g.t.Logf("natlab: gateway mapping %s -> %s (%s) expired", m.External, m.Internal, m.Protocol)
				return true
			}
			return false
		})
		if len(g.maps) != n {
			if err := g.applyLocked(); err != nil {
				g.t.Errorf("natlab: gateway: %v", err)
			}
		}
		g.mu.Unlock()
	}
}

// grantLocked creates or renews the mapping of internal, preferring the
// suggested external port, and returns it. A port held by another client's
// mapping is not taken; renewing keeps the port already granted.
func (g *Gateway) grantLocked(proto string, internal netip.AddrPort, suggested uint16, lifetime time.Duration, nonce [12]byte) (*GatewayMapping, error) {
	lifetime = min(lifetime, g.cfg.MaxLifetime)
	for _, m := range g.maps {
		if m.Internal == internal {
			if proto == "pcp" && m.Protocol == "pcp" && m.nonce != nonce {
				return nil, errors.New("nonce mismatch")
			}
			m.Expires = time.Now().Add(lifetime)
			m.Protocol, m.nonce = proto, nonce
			return m, g.applyLocked()
		}
	}
	taken := func(p uint16) bool {
		return p < 1024 || slices.ContainsFunc(g.maps, func(m *GatewayMapping) bool { return m.External.Port() == p })
	}
	ext := suggested
	for tries := 0; taken(ext); tries++ {
		if tries == 100 {
			return nil, errors.New("no free port")
		}
		ext = uint16(1024 + rand.IntN(65536-1024))
	}
	m := &GatewayMapping{Protocol: proto, Internal: internal, External: netip.AddrPortFrom(g.wan, ext), Expires: time.Now().Add(lifetime), nonce: nonce}
	g.maps = append(g.maps, m)
	g.t.Logf("natlab: gateway mapped %s -> %s (%s, %v)", m.External, internal, proto, lifetime)
	return m, g.applyLocked()
}

// deleteLocked removes the mapping of internal (every mapping of its
// address if its port is 0) and tells whether one existed.
func (g *Gateway) deleteLocked(internal netip.AddrPort) (bool, error) {
	n := len(g.maps)
	g.maps = slices.DeleteFunc(g.maps, func(m *GatewayMapping) bool {
		if m.Internal == internal || (internal.Port() == 0 && m.Internal.Addr() == internal.Addr()) {
			g.t.Logf("natlab: gateway mapping %s -> %s (%s) deleted", m.External, m.Internal, m.Protocol)
			return true
		}
		return false
	})
	if len(g.maps) == n {
		return false, nil
	}
	return true, g.applyLocked()
}

// applyLocked loads the forwarding rules of the mappings, replacing the
// previous ones in one transaction.
func (g *Gateway) applyLocked() error {
	var mark, dnat, snat strings.Builder
	var ports []string
	for _, m := range g.maps {
		ports = append(ports, fmt.Sprint(m.External.Port()))
		fmt.Fprintf(&dnat, "\t\tiifname \"wan\" udp dport %d dnat to %s\n", m.External.Port(), m.Internal)
		fmt.Fprintf(&snat, "\t\toifname \"wan\" ip saddr %s udp sport %d snat to %s\n", m.Internal.Addr(), m.Internal.Port(), m.External)
	}
	if len(ports) > 0 {
		fmt.Fprintf(&mark, "\t\tiifname \"wan\" udp dport { %s } meta mark set %s\n", strings.Join(ports, ", "), gatewayMark)
	}
	rules := `table ip natlab_pm
delete table ip natlab_pm
table ip natlab_pm {
	chain pm_mark {
		type filter hook prerouting priority -160; policy accept;
` + mark.String() + `	}
	chain pm_dnat {
		type nat hook prerouting priority -100; policy accept;
` + dnat.String() + `	}
	chain pm_snat {
		type nat hook postrouting priority 90; policy accept;
` + snat.String() + `	}
}
`
	if rules == g.applied {
		return nil
	}
	if err := g.router.nftApply(context.Background(), rules); err != nil {
		return err
	}
	g.applied = rules
	return nil
}

// servePMP answers NAT-PMP and PCP requests on port 5351.
func (g *Gateway) servePMP() {
	buf := make([]byte, pcp.MaxLen+1)
	for {
		n, from, err := g.pmp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		var resp []byte
		switch {
		case n >= 1 && buf[0] == pmpVersion && g.cfg.NATPMP:
			resp = g.answerPMP(buf[:n], from)
		case n >= 1 && buf[0] == pcp.Version && g.cfg.PCP:
			resp = g.answerPCP(buf[:n], from)
		case n >= 2 && g.cfg.PCP:
			// RFC 6887 section 9: a PCP server answers a version it
			// does not speak with UNSUPP_VERSION and its own version.
			resp = pcp.MapResponse{Result: pcp.UnsuppVersion, Epoch: g.epoch()}.Marshal()[:24]
		case n >= 2:
			resp = pmpErrorResponse(buf[1], pmpUnsuppVer, g.epoch())
		}
		if resp != nil {
			_, _ = g.pmp.WriteToUDPAddrPort(resp, from)
		}
	}
}

func (g *Gateway) epoch() uint32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.epochLocked()
}

func (g *Gateway) answerPMP(b []byte, from netip.AddrPort) []byte {
	req, err := parsePMPRequest(b)
	if err != nil {
		return nil // RFC 6886: a malformed request is dropped
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	epoch := g.epochLocked()
	switch req.op {
	case pmpOpAddress:
		return pmpAddressResponse(pmpSuccess, epoch, g.answeredExternal().As4())
	case pmpOpMapTCP:
		// The lab maps UDP only, what connet needs.
		return pmpMapResponse(req.op, pmpUnsuppOpcode, epoch, req.internalPort, 0, 0)
	case pmpOpMapUDP:
	default:
		return pmpErrorResponse(req.op, pmpUnsuppOpcode, epoch)
	}
	internal := netip.AddrPortFrom(from.Addr(), req.internalPort)
	if req.lifetime == 0 {
		// RFC 6886 section 3.4: a deletion; its response carries
		// external port 0 and lifetime 0.
		if _, err := g.deleteLocked(internal); err != nil {
			g.t.Errorf("natlab: gateway: %v", err)
		}
		return pmpMapResponse(req.op, pmpSuccess, epoch, req.internalPort, 0, 0)
	}
	m, err := g.grantLocked("nat-pmp", internal, req.suggestedPort, time.Duration(req.lifetime)*time.Second, [12]byte{})
	if err != nil {
		return pmpMapResponse(req.op, pmpNoResources, epoch, req.internalPort, 0, 0)
	}
	return pmpMapResponse(req.op, pmpSuccess, epoch, req.internalPort, g.answeredPort(m), uint32(time.Until(m.Expires).Round(time.Second)/time.Second))
}

func (g *Gateway) answerPCP(b []byte, from netip.AddrPort) []byte {
	req, err := pcp.ParseMapRequest(b)
	g.mu.Lock()
	defer g.mu.Unlock()
	resp := pcp.MapResponse{Epoch: g.epochLocked(), Nonce: req.Nonce, InternalPort: req.InternalPort}
	fail := func(code uint8) []byte {
		resp.Result = code
		resp.Lifetime = 30 // how long to cache the error (RFC 6887 section 7.2)
		return resp.Marshal()
	}
	switch {
	case errors.Is(err, pcp.ErrOpcode):
		return fail(pcp.UnsuppOpcode)
	case err != nil:
		return fail(pcp.MalformedRequest)
	case req.Client != from.Addr():
		return fail(pcp.AddressMismatch)
	}
	internal := netip.AddrPortFrom(from.Addr(), req.InternalPort)
	if req.Lifetime == 0 {
		if _, err := g.deleteLocked(internal); err != nil {
			g.t.Errorf("natlab: gateway: %v", err)
		}
		resp.External = g.wan
		return resp.Marshal()
	}
	m, err := g.grantLocked("pcp", internal, req.SuggestedPort, time.Duration(req.Lifetime)*time.Second, req.Nonce)
	if err != nil {
		return fail(pcp.NotAuthorized)
	}
	resp.Lifetime = uint32(time.Until(m.Expires).Round(time.Second) / time.Second)
	resp.ExternalPort = g.answeredPort(m)
	resp.External = g.answeredExternal()
	return resp.Marshal()
}
