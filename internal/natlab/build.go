package natlab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netns"
)

// node is one namespace being built: what to configure in it, in order.
type node struct {
	role    string
	host    *Host
	setup   []string // ip -batch lines: links and addresses
	routes  []string // ip -batch lines run after setup
	forward bool     // a router
	bridged bool     // holds a bridge
	ruleset string   // nftables ruleset, if any
	v6      bool     // IPv6 enabled
	// forward6 forwards IPv6: routers, and the internet in V6 topologies
	// (which forwards no IPv4).
	forward6 bool
	// udpTimeout, if set, replaces the kernel's UDP conntrack timeouts.
	udpTimeout time.Duration
}

// builder turns a topology spec into namespaces. Veth pairs are created
// by one "ip -n <internet ns> -batch" with both ends placed directly into
// lab namespaces, so no interface ever appears in the root namespace.
type builder struct {
	prefix string
	nodes  []*node
	veths  []string
}

func (b *builder) node(role string, forward bool) *node {
	n := &node{role: role, host: &Host{Name: b.prefix + role, Role: role, ns: netns.None()}, forward: forward}
	n.setup = append(n.setup, "link set lo up")
	b.nodes = append(b.nodes, n)
	return n
}

// bridge creates a bridge in n.
func (n *node) bridge(name string) {
	n.setup = append(n.setup, "link add "+name+" type bridge", "link set "+name+" up")
	n.bridged = true
}

// addr assigns p to dev and records the address on the host.
func (n *node) addr(dev string, p netip.Prefix) {
	n.setup = append(n.setup, "address add "+p.String()+" dev "+dev)
	n.host.Addrs = append(n.host.Addrs, p.Addr())
	n.host.Addr = n.host.Addrs[0]
}

// addr6 assigns the IPv6 prefix p to dev (without duplicate address
// detection, which would leave it unusable for a second or two) and
// enables IPv6 in n.
func (n *node) addr6(dev string, p netip.Prefix) {
	n.setup = append(n.setup, "address add "+p.String()+" dev "+dev+" nodad")
	n.v6 = true
	if !n.host.Addr6.IsValid() {
		n.host.Addr6 = p.Addr()
	}
}

func (n *node) defaultVia(gw netip.Addr) {
	n.routes = append(n.routes, "route add default via "+gw.String())
}

// routeVia routes dst through gw.
func (n *node) routeVia(dst netip.Prefix, gw netip.Addr) {
	n.routes = append(n.routes, "route add "+dst.String()+" via "+gw.String())
}

// connect plugs interface downIf of down into the bridge upBridge of up
// with a veth pair; the bridge side is named "p-<down role>".
func (b *builder) connect(up *node, upBridge string, down *node, downIf string) {
	port := "p-" + down.role
	b.veths = append(b.veths, fmt.Sprintf("link add %s netns %s type veth peer name %s netns %s",
		port, up.host.Name, downIf, down.host.Name))
	up.setup = append(up.setup, "link set "+port+" master "+upBridge, "link set "+port+" up")
	down.setup = append(down.setup, "link set "+downIf+" up")
}

// plan lays out the namespaces of a topology and fills in the lab's hosts.
func (b *builder) plan(l *Lab, sp spec) {
	inet := b.node("net", false)
	inet.bridge("br0")
	inet.addr("br0", prefixOf(internetGateway, internetNet))
	if sp.v6 {
		// The IPv6 internet routes between the sides' prefixes (and has
		// no route anywhere else).
		inet.addr6("br0", prefixOf(internetGateway6, internetNet6))
		inet.forward6 = true
	}
	l.internet = inet.host

	srv := b.node("srv", false)
	b.connect(inet, "br0", srv, "eth0")
	srv.addr("eth0", prefixOf(serverAddr1, internetNet))
	srv.addr("eth0", prefixOf(serverAddr2, internetNet))
	srv.defaultVia(internetGateway)
	srv.host.PublicAddr = srv.host.Addr
	l.Server = srv.host

	var aLAN *node
	l.A, aLAN = b.side(0, "a", sp, sp.a, inet)
	if sp.sharedLAN {
		h := b.node("b", false)
		b.connect(aLAN, "lan", h, "eth0")
		h.addr("eth0", prefixOf(nthAddr(sides[0].lan, 3), sides[0].lan))
		h.defaultVia(l.A.NAT.Gateway)
		h.host.NAT = l.A.NAT
		h.host.PublicAddr = l.A.PublicAddr
		l.B = h.host
	} else {
		l.B, _ = b.side(1, "b", sp, sp.b, inet)
	}
	for _, n := range b.nodes {
		switch n.host {
		case l.A:
			n.ruleset = peerRuleset([]netip.Addr{l.B.Addr, l.B.PublicAddr, l.B.Addr6})
		case l.B:
			n.ruleset = peerRuleset([]netip.Addr{l.A.Addr, l.A.PublicAddr, l.A.Addr6})
		}
	}
}

// side builds client side i (0 for A, 1 for B) behind the NATs nats
// (outermost first) and returns the client and the node holding its LAN.
// With sp.v6, the side also gets routed IPv6: the router (at most one)
// forwards and firewalls it, without NAT.
func (b *builder) side(i int, role string, sp spec, nats []NATKind, inet *node) (*Host, *node) {
	sa := sides[i]
	up, upBridge, gw := inet, "br0", internetGateway
	wan := prefixOf(sa.public, internetNet)
	var nat *NAT
	for j, kind := range nats {
		rrole := "r" + role
		if j < len(nats)-1 {
			rrole = "c" + role // carrier
		}
		r := b.node(rrole, true)
		b.connect(up, upBridge, r, "wan")
		r.addr("wan", wan)
		r.defaultVia(gw)
		r.bridge("lan")
		r.ruleset = routerRuleset(kind)
		r.udpTimeout = sp.udpTimeout
		if sp.v6 {
			r.addr6("wan", prefixOf(sa.public6, internetNet6))
			r.addr6("lan", prefixOf(nthAddr(sa.lan6, 1), sa.lan6))
			r.forward6 = true
			r.defaultVia(internetGateway6)
			r.ruleset += firewall6Ruleset
			inet.routeVia(sa.lan6, sa.public6)
		}
		r.host.NAT = nat
		r.host.PublicAddr = sa.public
		next := &NAT{Kind: kind, Router: r.host}
		if j < len(nats)-1 {
			next.LAN = cgnatNet
			next.Gateway = sa.cgnat[0]
			wan = prefixOf(sa.cgnat[1], cgnatNet)
		} else {
			next.LAN = sa.lan
			next.Gateway = nthAddr(sa.lan, 1)
			wan = prefixOf(nthAddr(sa.lan, 2), sa.lan)
		}
		r.addr("lan", prefixOf(next.Gateway, next.LAN))
		nat, up, upBridge, gw = next, r, "lan", next.Gateway
	}
	h := b.node(role, false)
	b.connect(up, upBridge, h, "eth0")
	h.addr("eth0", wan)
	h.defaultVia(gw)
	if sp.v6 {
		if nat == nil {
			h.addr6("eth0", prefixOf(sa.public6, internetNet6))
			h.defaultVia(internetGateway6)
		} else {
			h.addr6("eth0", prefixOf(nthAddr(sa.lan6, 2), sa.lan6))
			h.defaultVia(nthAddr(sa.lan6, 1))
		}
	}
	h.host.NAT = nat
	h.host.PublicAddr = sa.public
	return h.host, up
}

func prefixOf(a netip.Addr, net netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(a, net.Bits())
}

// create makes the namespaces and configures them. Every namespace that
// was created is recorded in l.names before anything else can fail, so
// that the lab's cleanup deletes exactly those.
func (b *builder) create(ctx context.Context, l *Lab) error {
	var add strings.Builder
	for _, n := range b.nodes {
		// Refuse to adopt an existing namespace of the same name (left over
		// by a crashed process that had our PID): it is not ours to delete.
		_, err := os.Stat(filepath.Join(netnsDir, n.host.Name))
		if err == nil {
			return fmt.Errorf("natlab: namespace %s already exists (stale from a crashed run?)", n.host.Name)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("natlab: check namespace %s: %w", n.host.Name, err)
		}
		fmt.Fprintf(&add, "netns add %s\n", n.host.Name)
	}
	_, addErr := run(ctx, add.String(), "ip", "-force", "-batch", "-")
	for _, n := range b.nodes {
		if _, err := os.Stat(filepath.Join(netnsDir, n.host.Name)); err == nil {
			l.names = append(l.names, n.host.Name)
		}
	}
	if addErr != nil {
		return fmt.Errorf("natlab: create namespaces: %w", addErr)
	}
	for _, n := range b.nodes {
		h, err := netns.GetFromName(n.host.Name)
		if err != nil {
			return fmt.Errorf("natlab: open namespace %s: %w", n.host.Name, err)
		}
		n.host.ns = h
		l.hosts = append(l.hosts, n.host)
	}
	// Sysctls first, so that IPv6 is off before any interface exists.
	for _, n := range b.nodes {
		if err := n.sysctls(); err != nil {
			return err
		}
	}
	if _, err := run(ctx, strings.Join(b.veths, "\n")+"\n", "ip", "-n", l.internet.Name, "-batch", "-"); err != nil {
		return fmt.Errorf("natlab: create veth pairs: %w", err)
	}
	for _, n := range b.nodes {
		script := strings.Join(append(n.setup, n.routes...), "\n") + "\n"
		if _, err := run(ctx, script, "ip", "-n", n.host.Name, "-batch", "-"); err != nil {
			return fmt.Errorf("natlab: configure %s: %w", n.host.Name, err)
		}
		if n.ruleset != "" {
			if err := n.host.nftApply(ctx, n.ruleset); err != nil {
				return err
			}
		}
	}
	return nil
}

// netnsDir is where "ip netns" keeps named namespaces.
const netnsDir = "/run/netns"

func (n *node) sysctls() error {
	forward, forward6, noV6 := "0", "0", "1"
	if n.forward {
		forward = "1"
	}
	if n.forward6 {
		forward6 = "1"
	}
	if n.v6 {
		noV6 = "0"
	}
	settings := []struct {
		path, value string
		optional    bool
	}{
		// IPv6 only where a V6 topology puts it: elsewhere it would add
		// link-local chatter and paths that the lab's rules do not cover.
		{"net/ipv6/conf/all/disable_ipv6", noV6, !n.v6},
		{"net/ipv6/conf/default/disable_ipv6", noV6, !n.v6},
		// New namespaces may inherit forwarding from the root namespace.
		{"net/ipv4/ip_forward", forward, false},
	}
	if n.v6 {
		settings = append(settings, []struct {
			path, value string
			optional    bool
		}{
			{"net/ipv6/conf/all/forwarding", forward6, false},
			// Static addresses only: no router advertisements, no
			// duplicate address detection delaying the first bind.
			{"net/ipv6/conf/all/accept_ra", "0", false},
			{"net/ipv6/conf/default/accept_ra", "0", false},
			{"net/ipv6/conf/all/accept_dad", "0", false},
			{"net/ipv6/conf/default/accept_dad", "0", false},
		}...)
	}
	if n.udpTimeout > 0 {
		// The conntrack timeouts are per namespace; both the one-way
		// (30 s) and the replied (120 s) ones, so every flow is forgotten
		// after the same silence.
		secs := strconv.Itoa(max(1, int(n.udpTimeout/time.Second)))
		settings = append(settings, []struct {
			path, value string
			optional    bool
		}{
			{"net/netfilter/nf_conntrack_udp_timeout", secs, false},
			{"net/netfilter/nf_conntrack_udp_timeout_stream", secs, false},
		}...)
	}
	if n.bridged {
		// With br_netfilter loaded, bridged frames would traverse the IP
		// hooks of the namespace (NAT, filters, counters) as if routed.
		for _, f := range []string{"iptables", "ip6tables", "arptables"} {
			settings = append(settings, struct {
				path, value string
				optional    bool
			}{"net/bridge/bridge-nf-call-" + f, "0", true})
		}
	}
	err := n.host.Do(func() error {
		for _, s := range settings {
			// /proc/sys/net shows the namespace of the calling thread.
			err := os.WriteFile(filepath.Join("/proc/sys", s.path), []byte(s.value), 0o644)
			if err != nil && !(s.optional && errors.Is(err, fs.ErrNotExist)) {
				return fmt.Errorf("sysctl %s=%s: %w", s.path, s.value, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("natlab: sysctls in %s: %w", n.host.Name, err)
	}
	return nil
}
