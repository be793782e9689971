package natlab

import (
	"fmt"
	"net/netip"
	"time"
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

	// NATs that forget, and IPv6 (issue 9, items 6 and 7).

	// ConeForgetful is Cone with NATs that forget a UDP flow after
	// ShortUDPTimeout without packets (replied or not), far below the
	// kernel's 30 s / 120 s.
	ConeForgetful
	// ConeV6 is Cone for IPv4, plus IPv6 routed without NAT to both sides,
	// each behind a stateful firewall (see the package documentation).
	ConeV6
	// BothSymmetricV6 is BothSymmetric for IPv4, plus routed IPv6 as in
	// ConeV6: only IPv6 can carry a direct path.
	BothSymmetricV6
)

// Topologies lists every topology, for table-driven tests.
func Topologies() []Topology {
	return []Topology{Public, Cone, SameLAN, DoubleNAT, Symmetric, BothSymmetric,
		SymmetricB, SymmetricPortMap, UDPBlocked,
		ConeForgetful, ConeV6, BothSymmetricV6,
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
	case ConeForgetful:
		return "ConeForgetful"
	case ConeV6:
		return "ConeV6"
	case BothSymmetricV6:
		return "BothSymmetricV6"
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
	// expect is the path connet should end up with (see ExpectedPath).
	expect Path
	// udpTimeout, if set, is how long every NAT keeps an idle UDP flow.
	udpTimeout time.Duration
	// v6 adds routed IPv6 (no NAT) to A's and B's side; each side may have
	// at most one NAT router, which firewalls IPv6 statefully.
	v6 bool
}

// Path is how A and B end up connected.
type Path int

const (
	// PathUnknown is the expectation of a topology that declares none.
	PathUnknown Path = iota
	// PathDirect: a direct path carries the tunnel.
	PathDirect
	// PathRelay: the tunnel works, only through a relay.
	PathRelay
	// PathFail: no tunnel at all.
	PathFail
)

func (p Path) String() string {
	switch p {
	case PathDirect:
		return "direct"
	case PathRelay:
		return "relay"
	case PathFail:
		return "fail"
	}
	return "unknown"
}

// ExpectedPath is the path connet should end up with in t, declared
// next to the topology's shape (in spec) so a regression fails the tests
// that compare (the reach table's TestReach).
func (t Topology) ExpectedPath() Path {
	sp, err := t.spec()
	if err != nil {
		return PathUnknown
	}
	return sp.expect
}

// ShortUDPTimeout is how long the NATs of ConeForgetful keep an idle UDP
// flow: above the clients' 5 s keepalive, below every common NAT's 30 s.
const ShortUDPTimeout = 8 * time.Second

// UDPTimeout is how long t's NATs keep an idle UDP flow; 0 means the
// kernel's defaults (30 s one way, 120 s once replied).
func (t Topology) UDPTimeout() time.Duration {
	sp, _ := t.spec()
	return sp.udpTimeout
}

// IPv6 tells whether A and B also have routed IPv6.
func (t Topology) IPv6() bool {
	sp, _ := t.spec()
	return sp.v6
}

func (t Topology) spec() (spec, error) {
	switch t {
	case Public:
		return spec{expect: PathDirect}, nil
	case Cone:
		return spec{a: []NATKind{ConeNAT}, b: []NATKind{ConeNAT}, expect: PathDirect}, nil
	case SameLAN:
		return spec{a: []NATKind{ConeNAT}, sharedLAN: true, expect: PathDirect}, nil
	case DoubleNAT:
		return spec{a: []NATKind{ConeNAT, ConeNAT}, b: []NATKind{ConeNAT}, expect: PathDirect}, nil
	case Symmetric:
		return spec{a: []NATKind{SymmetricNAT}, b: []NATKind{ConeNAT}, expect: PathDirect}, nil
	case BothSymmetric:
		return spec{a: []NATKind{SymmetricNAT}, b: []NATKind{SymmetricNAT}, expect: PathRelay}, nil
	case SymmetricB:
		return spec{a: []NATKind{ConeNAT}, b: []NATKind{SymmetricNAT}, expect: PathDirect}, nil
	case SymmetricPortMap:
		return spec{a: []NATKind{SymmetricNAT}, b: []NATKind{ConeNAT}, gatewayA: true, expect: PathDirect}, nil
	case UDPBlocked:
		return spec{a: []NATKind{UDPBlockingNAT}, b: []NATKind{ConeNAT}, expect: PathRelay}, nil
	case ConeForgetful:
		return spec{a: []NATKind{ConeNAT}, b: []NATKind{ConeNAT}, udpTimeout: ShortUDPTimeout, expect: PathDirect}, nil
	case ConeV6:
		return spec{a: []NATKind{ConeNAT}, b: []NATKind{ConeNAT}, v6: true, expect: PathDirect}, nil
	case BothSymmetricV6:
		return spec{a: []NATKind{SymmetricNAT}, b: []NATKind{SymmetricNAT}, v6: true, expect: PathDirect}, nil
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
	// The IPv6 internet of the V6 topologies, on the same bridge.
	internetNet6     = netip.MustParsePrefix("2001:db8::/64")
	internetGateway6 = netip.MustParseAddr("2001:db8::1")
)

// sideAddrs is the address plan of one client side (A or B).
type sideAddrs struct {
	public netip.Addr   // on the internet
	lan    netip.Prefix // innermost home LAN; its .1 is the router
	cgnat  [2]netip.Addr
	// public6 is the side's address on the IPv6 internet (its router's WAN,
	// or the host itself without a NAT); lan6 is its routed IPv6 LAN.
	public6 netip.Addr
	lan6    netip.Prefix
}

var sides = [2]sideAddrs{
	{
		public:  netip.MustParseAddr("203.0.113.20"),
		lan:     netip.MustParsePrefix("192.0.2.0/24"),
		cgnat:   [2]netip.Addr{netip.MustParseAddr("100.64.0.1"), netip.MustParseAddr("100.64.0.2")},
		public6: netip.MustParseAddr("2001:db8::20"),
		lan6:    netip.MustParsePrefix("2001:db8:a::/64"),
	},
	{
		public:  netip.MustParseAddr("203.0.113.30"),
		lan:     netip.MustParsePrefix("198.51.100.0/24"),
		cgnat:   [2]netip.Addr{netip.MustParseAddr("100.64.0.3"), netip.MustParseAddr("100.64.0.4")},
		public6: netip.MustParseAddr("2001:db8::30"),
		lan6:    netip.MustParsePrefix("2001:db8:b::/64"),
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
