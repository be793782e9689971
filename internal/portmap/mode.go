package portmap

// Mode selects how a client asks its NAT gateway to forward a UDP port to
// its socket: the spec's nat-pmp option, spelled as in the config files.
// The mapped address is offered to peers as one more candidate: with it, a
// peer can reach the client directly even behind a NAT that maps every
// destination to a new port.
type Mode string

// The port mapping modes. System, Dial and Disabled are the spec's; the
// last three force one protocol, with the gateway found as System does.
const (
	// ModeSystem reads the gateway from the routing table and tries
	// NAT-PMP, then PCP, then UPnP-IGD. The default.
	ModeSystem Mode = "system"
	// ModeDial takes the local address of a UDP socket "connected" to the
	// control server, and the first address of its subnet as the gateway,
	// for systems (such as Android) that hide their routing table.
	ModeDial Mode = "dial"
	// ModeDisabled maps no port.
	ModeDisabled Mode = "disabled"
	// ModeOnlyNATPMP uses only NAT-PMP (RFC 6886).
	ModeOnlyNATPMP Mode = "nat-pmp"
	// ModeOnlyPCP uses only PCP (RFC 6887).
	ModeOnlyPCP Mode = "pcp"
	// ModeOnlyUPnP uses only UPnP-IGD (WANIPConnection:1).
	ModeOnlyUPnP Mode = "upnp"
)
