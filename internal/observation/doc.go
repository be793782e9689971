// Package observation lets a relay vouch for where it sees a client's UDP
// socket, so that the control server, not the client, decides how the
// client's NAT maps.
//
// Whether a NAT maps per destination ("symmetric") shows only from two
// places at once: the control server sees the client's socket at one
// public address and port, a relay at another port of the same address.
// The server cannot see what the relay sees, and the client's word on it
// would let any client make its peers spray probes (see package direct)
// at whatever its control connection came from. So the relay signs what
// it saw (the client's identity and address) with its identity key, the
// client hands the signed observation on, and the server checks it with
// the relay's certificate, which it knows since it offers the relay to
// clients.
//
// What a signed observation proves is narrow, and enough: that the relay
// saw this client, over QUIC (a validated path: the handshake reached the
// address), at that address. A client may still pass for symmetric on
// purpose (two sockets, one per server), but the address peers then probe
// is the one its own control connection comes from over UDP: its own. A
// client connected over TCP has no UDP mapping, and its address (maybe a
// proxy's) is never probed. An observation carries no time: it is bound to
// the client's identity, which lives as long as the client process, and
// replaying an old one gains nothing a fresh connection to the relay would
// not give.
package observation
