package natlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// routerRuleset is the nftables ruleset of a NAT router whose upstream
// interface is "wan".
//
// Unsolicited packets from the WAN are dropped in prerouting at priority
// -150, i.e. after conntrack has looked them up (-200) but before their new
// conntrack entry is confirmed. Dropping them later (forward/input) is not
// enough: a packet to the router's own address would be delivered locally,
// its entry confirmed, and a later outgoing flow whose masqueraded tuple
// collides with it would be moved to another port, breaking the cone. The
// forward chain repeats the rule as a second line of defence.
func routerRuleset(kind NATKind) string {
	masq := "masquerade"
	if kind == SymmetricNAT {
		masq = "masquerade fully-random"
	}
	// A firewall that lets only TCP out drops UDP silently (no ICMP), so
	// that QUIC handshakes time out as they do behind such firewalls.
	udpOut := ""
	if kind == UDPBlockingNAT {
		udpOut = "\n\t\tiifname \"lan\" meta l4proto udp drop"
	}
	return `table ip natlab {
	chain wan_in {
		type filter hook prerouting priority -150; policy accept;
		iifname "wan" ct state established,related accept
		iifname "wan" drop
	}
	chain forward {
		type filter hook forward priority 0; policy accept;
		iifname "wan" ct state established,related accept
		iifname "wan" drop` + udpOut + `
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		oifname "wan" ` + masq + `
	}
}
`
}

// firewall6Ruleset is the IPv6 firewall of a router in the V6 topologies:
// IPv6 is routed without NAT, and, as home routers do (RFC 6092), only
// packets of flows opened from the LAN get in from the WAN. Addresses and
// ports are kept, so both peers sending at once opens the way.
const firewall6Ruleset = `table ip6 natlab6 {
	chain forward {
		type filter hook forward priority 0; policy accept;
		iifname "wan" ct state established,related accept
		iifname "wan" drop
	}
}
`

// Counter names of the peer traffic table in client namespaces.
const (
	counterToPeer   = "to_peer"
	counterFromPeer = "from_peer"
)

// peerRuleset counts UDP packets a client sends to, and receives from, any
// of the other client's addresses (IPv4 and IPv6; invalid ones are
// skipped). Counting in the clients' own namespaces works in every
// topology, including SameLAN where the peers' traffic only crosses a
// bridge.
func peerRuleset(peer []netip.Addr) string {
	var v4, v6 []string
	seen := map[netip.Addr]bool{}
	for _, a := range peer {
		if !a.IsValid() || seen[a] {
			continue
		}
		seen[a] = true
		if a.Is4() {
			v4 = append(v4, a.String())
		} else {
			v6 = append(v6, a.String())
		}
	}
	var out, in strings.Builder
	for _, f := range []struct {
		family string
		addrs  []string
	}{{"ip", v4}, {"ip6", v6}} {
		if len(f.addrs) == 0 {
			continue
		}
		set := "{ " + strings.Join(f.addrs, ", ") + " }"
		fmt.Fprintf(&out, "\t\tmeta l4proto udp %s daddr %s counter name %q\n", f.family, set, counterToPeer)
		fmt.Fprintf(&in, "\t\tmeta l4proto udp %s saddr %s counter name %q\n", f.family, set, counterFromPeer)
	}
	return `table ` + peerTableFamily + ` ` + peerTable + ` {
	counter ` + counterToPeer + ` {
	}
	counter ` + counterFromPeer + ` {
	}
	chain output {
		type filter hook output priority 0; policy accept;
` + out.String() + `	}
	chain input {
		type filter hook input priority 0; policy accept;
` + in.String() + `	}
}
`
}

// The peer traffic table: inet, so one pair of counters sees both families.
const (
	peerTableFamily = "inet"
	peerTable       = "natlab_peer"
)

// nftApply loads a ruleset into the host's namespace.
func (h *Host) nftApply(ctx context.Context, ruleset string) error {
	if _, err := run(ctx, ruleset, h.argv([]string{"nft", "-f", "-"})...); err != nil {
		return fmt.Errorf("natlab: nft in %s: %w", h.Name, err)
	}
	return nil
}

// nftCounters returns the packet counts of the named counters of a table
// of the given family; with reset, the counters are zeroed in the same
// operation.
func (h *Host) nftCounters(ctx context.Context, family, table string, reset bool) (map[string]uint64, error) {
	verb := "list"
	if reset {
		verb = "reset"
	}
	out, err := run(ctx, "", h.argv([]string{"nft", "-j", verb, "counters", "table", family, table})...)
	if err != nil {
		return nil, fmt.Errorf("natlab: nft counters in %s: %w", h.Name, err)
	}
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Packets uint64 `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return nil, fmt.Errorf("natlab: nft counters in %s: parse %q: %w", h.Name, out, err)
	}
	counts := map[string]uint64{}
	for _, o := range doc.Nftables {
		if o.Counter != nil {
			counts[o.Counter.Name] = o.Counter.Packets
		}
	}
	return counts, nil
}
