package natlab

import (
	"fmt"
	"net/netip"
)

// Topology selects what stands between the server, A and B.
type Topology int

const (
	// Public puts the server, A and B directly on the internet.
	Public Topology = iota
	// Cone puts A and B each behind its own plain masquerade NAT
	// (endpoint-independent mapping, address-and-port-dependent filtering).
	Cone
	// SameLAN puts A and B on one LAN behind one cone NAT without hairpin
	// NAT: they can reach each other only by their LAN addresses.
	SameLAN
	// DoubleNAT puts A behind a home cone NAT whose WAN is inside a carrier
	// cone NAT (100.64.0.0/10 between them); B is behind its own cone NAT.
	DoubleNAT
	// Symmetric puts A behind a fully-random masquerade NAT (a new port per
	// destination) and B behind a cone NAT.
	Symmetric
	// BothSymmetric puts A and B each behind a fully-random NAT.
	BothSymmetric
	// SymmetricB mirrors Symmetric: A behind a cone NAT, B behind a
	// fully-random one.
	SymmetricB
	// SymmetricPortMap is Symmetric with a port mapping gateway (NAT-PMP,
	// PCP and UPnP-IGD, see Gateway) on A's router: only the mapping
	// gives B a way in to A. Lab.Gateway is that gateway.
	SymmetricPortMap
	// UDPBlocked puts A behind a cone NAT whose router drops all outbound
	// UDP (a firewall that lets only TCP out), and B behind a cone NAT.
	UDPBlocked
)

// Topologies lists every topology, for table-driven tests.
func Topologies() []Topology {
	return []Topology{Public, Cone, SameLAN, DoubleNAT, Symmetric, BothSymmetric,
		SymmetricB, SymmetricPortMap, UDPBlocked,
	}
}

func (t Topology) String() string {
	switch t {
	case Public:
		return "Public"
	case Cone:
		return "Cone"
	case SameLAN:
		return "SameLAN"
	case DoubleNAT:
		return "DoubleNAT"
	case Symmetric:
		return "Symmetric"
	case BothSymmetric:
		return "BothSymmetric"
	case SymmetricB:
		return "SymmetricB"
	case SymmetricPortMap:
		return "SymmetricPortMap"
	case UDPBlocked:
		return "UDPBlocked"
	}
	return fmt.Sprintf("Topology(%d)", int(t))
}

// NATKind is how a NAT router maps outgoing flows.
type NATKind int

const (
	// ConeNAT is plain masquerade: the source port is kept when possible and
	// the mapping does not depend on the destination.
	ConeNAT NATKind = iota
	// SymmetricNAT is "masquerade fully-random": every flow (destination)
	// gets a new random port.
	SymmetricNAT
	// UDPBlockingNAT is a cone NAT that also drops every UDP packet from
	// its LAN: only TCP gets out.
	UDPBlockingNAT
)

func (k NATKind) String() string {
	switch k {
	case ConeNAT:
		return "cone"
	case SymmetricNAT:
		return "symmetric"
	case UDPBlockingNAT:
		return "cone, outbound UDP dropped"
	}
	return fmt.Sprintf("NATKind(%d)", int(k))
}

// spec is the shape of a topology: the NATs in front of A and of B, outermost
// first (none for a host on the internet).
type spec struct {
	a, b []NATKind
	// sharedLAN puts B on A's innermost LAN instead of its own side.
	sharedLAN bool
	// gatewayA runs a port mapping gateway on A's innermost router.
	gatewayA bool
}

func (t Topology) spec() (spec, error) {
	switch t {
	case Public:
		return spec{}, nil
	case Cone:
		return spec{a: []NATKind{ConeNAT}, b: []NATKind{ConeNAT}}, nil
	case SameLAN:
		return spec{a: []NATKind{ConeNAT}, sharedLAN: true}, nil
	case DoubleNAT:
		return spec{a: []NATKind{ConeNAT, ConeNAT}, b: []NATKind{ConeNAT}}, nil
	case Symmetric:
		return spec{a: []NATKind{SymmetricNAT}, b: []NATKind{ConeNAT}}, nil
	case BothSymmetric:
		return spec{a: []NATKind{SymmetricNAT}, b: []NATKind{SymmetricNAT}}, nil
	case SymmetricB:
		return spec{a: []NATKind{ConeNAT}, b: []NATKind{SymmetricNAT}}, nil
	case SymmetricPortMap:
		return spec{a: []NATKind{SymmetricNAT}, b: []NATKind{ConeNAT}, gatewayA: true}, nil
	case UDPBlocked:
		return spec{a: []NATKind{UDPBlockingNAT}, b: []NATKind{ConeNAT}}, nil
	}
	return spec{}, fmt.Errorf("natlab: unknown topology %d", int(t))
}

// The address plan; see the package documentation.
var (
	internetNet     = netip.MustParsePrefix("203.0.113.0/24")
	internetGateway = netip.MustParseAddr("203.0.113.1")
	serverAddr1     = netip.MustParseAddr("203.0.113.10")
	serverAddr2     = netip.MustParseAddr("203.0.113.11")
	cgnatNet        = netip.MustParsePrefix("100.64.0.0/10")
)

// sideAddrs is the address plan of one client side (A or B).
type sideAddrs struct {
	public netip.Addr   // on the internet
	lan    netip.Prefix // innermost home LAN; its .1 is the router
	cgnat  [2]netip.Addr
}

var sides = [2]sideAddrs{
	{
		public: netip.MustParseAddr("203.0.113.20"),
		lan:    netip.MustParsePrefix("192.0.2.0/24"),
		cgnat:  [2]netip.Addr{netip.MustParseAddr("100.64.0.1"), netip.MustParseAddr("100.64.0.2")},
	},
	{
		public: netip.MustParseAddr("203.0.113.30"),
		lan:    netip.MustParsePrefix("198.51.100.0/24"),
		cgnat:  [2]netip.Addr{netip.MustParseAddr("100.64.0.3"), netip.MustParseAddr("100.64.0.4")},
	},
}

// nthAddr returns the n-th address of p (p.Addr() + n); n is small.
func nthAddr(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr()
	for range n {
		a = a.Next()
	}
	return a
}
