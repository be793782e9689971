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

// Counter names of the peer traffic table in client namespaces.
const (
	counterToPeer   = "to_peer"
	counterFromPeer = "from_peer"
)

// peerRuleset counts UDP packets a client sends to, and receives from, any
// of the other client's addresses. Counting in the clients' own namespaces
// works in every topology, including SameLAN where the peers' traffic only
// crosses a bridge.
func peerRuleset(peer []netip.Addr) string {
	set := make([]string, 0, len(peer))
	seen := map[netip.Addr]bool{}
	for _, a := range peer {
		if !seen[a] {
			seen[a] = true
			set = append(set, a.String())
		}
	}
	addrs := "{ " + strings.Join(set, ", ") + " }"
	return `table ip natlab_peer {
	counter ` + counterToPeer + ` {
	}
	counter ` + counterFromPeer + ` {
	}
	chain output {
		type filter hook output priority 0; policy accept;
		meta l4proto udp ip daddr ` + addrs + ` counter name "` + counterToPeer + `"
	}
	chain input {
		type filter hook input priority 0; policy accept;
		meta l4proto udp ip saddr ` + addrs + ` counter name "` + counterFromPeer + `"
	}
}
`
}

// nftApply loads a ruleset into the host's namespace.
func (h *Host) nftApply(ctx context.Context, ruleset string) error {
	if _, err := run(ctx, ruleset, h.argv([]string{"nft", "-f", "-"})...); err != nil {
		return fmt.Errorf("natlab: nft in %s: %w", h.Name, err)
	}
	return nil
}

// nftCounters returns the packet counts of the named counters of a table;
// with reset, the counters are zeroed in the same operation.
func (h *Host) nftCounters(ctx context.Context, table string, reset bool) (map[string]uint64, error) {
	verb := "list"
	if reset {
		verb = "reset"
	}
	out, err := run(ctx, "", h.argv([]string{"nft", "-j", verb, "counters", "table", "ip", table})...)
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
