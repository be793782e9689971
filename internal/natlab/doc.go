// Package natlab builds real NAT topologies out of Linux network namespaces,
// veth pairs, bridges and nftables, for integration tests that run real
// processes (a connet control server and clients) and real sockets.
//
// Scope: the lab needs root, iproute2 (ip) and nftables (nft); conntrack(8)
// is used when present. Tests call [Require], which skips when the lab is not
// available, except under CI=true where it fails so CI cannot silently skip.
// Everything a lab creates lives in namespaces named with a per-lab prefix
// ("nl<pid hex>-<counter>-"), is never connected to the host's root
// namespace, and is deleted in t.Cleanup. Nothing is configured in the root
// namespace: veth pairs are created from inside the lab's internet
// namespace with both ends placed directly into lab namespaces.
//
// Address plan (documentation and shared address ranges only):
//
//	203.0.113.0/24   the "internet": a bridge (br0) in the internet namespace,
//	                 which holds 203.0.113.1, the default gateway of every
//	                 public host (it does not forward; traffic to any other
//	                 destination dies there)
//	203.0.113.10     server, first address
//	203.0.113.11     server, second address (for NAT mapping probes)
//	203.0.113.20     A's public address (A itself, or the WAN of A's NAT)
//	203.0.113.30     B's public address (B itself, or the WAN of B's NAT)
//	192.0.2.0/24     A's home LAN: router .1, A .2 (and B .3 in SameLAN)
//	198.51.100.0/24  B's home LAN: router .1, B .2
//	100.64.0.0/10    carrier-grade NAT link in DoubleNAT: carrier router
//	                 100.64.0.1, A's home router WAN 100.64.0.2
//
// The V6 topologies (ConeV6, BothSymmetricV6) add routed IPv6 without NAT
// beside the IPv4 plan, in the IPv6 documentation range:
//
//	2001:db8::/64    the IPv6 internet on the same bridge; the internet
//	                 namespace holds 2001:db8::1 and routes (only) between
//	                 the sides' prefixes below
//	2001:db8::20     WAN of A's router; 2001:db8::30, WAN of B's router
//	2001:db8:a::/64  A's LAN: router ::1, A ::2
//	2001:db8:b::/64  B's LAN: router ::1, B ::2
//
// Their routers firewall IPv6 like home routers (RFC 6092): only flows
// opened from the LAN get in. The server stays IPv4 only.
//
// In ConeForgetful the routers forget an idle UDP flow after
// ShortUDPTimeout (the per-namespace conntrack UDP timeout sysctls);
// [Lab.UDPFlows] shows the flows and [Lab.ForgetAll] flushes every router's
// conntrack table, as a rebooting NAT would.
//
// Every host namespace has lo up, IPv6 disabled (except in the V6
// topologies) and a default route; routers forward IPv4. A NAT router masquerades on its "wan" interface (plain
// masquerade: a port-preserving, endpoint-independent mapping; or
// "masquerade fully-random": a new port per destination), and drops every
// packet arriving on "wan" that does not belong to a known flow. The drop
// happens in prerouting right after conntrack, before the conntrack entry
// of such a packet is confirmed: otherwise an unsolicited inbound packet to
// the router's own address leaves an entry behind that can later make
// masquerade pick a different port for an outgoing flow, which turns a cone
// NAT into something else. Filtering is therefore address-and-port-dependent
// (a "port-restricted cone" for plain masquerade).
//
// A router can also run a port mapping gateway ([Lab.StartGateway]; the
// SymmetricPortMap topology has one on A's router): NAT-PMP and PCP on the
// LAN address's port 5351, UPnP-IGD through SSDP on the LAN, each mapping
// forwarded by nftables rules in the router's table natlab_pm (DNAT in,
// SNAT out) and let through the router's filter by a packet mark. Its
// answers can be made to lie ([GatewayMisbehavior]), for tests of the
// checks clients make.
//
// Use [Lab.VerifyNATs] to check by experiment ([Lab.Probe]) that every NAT
// behaves as its topology says, and [Lab.PeerTraffic] to judge by what
// crossed the wire whether A and B exchanged packets directly.
package natlab
