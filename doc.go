// Package connet exposes a service on one machine to another machine, through
// NATs, with the data flowing directly between the two over QUIC whenever a
// direct path exists.
//
// A [Client] connects to a control server, which only exchanges identities,
// addresses and routes. A client adds destinations (services it exposes,
// reached with [Destination.Accept]) and sources (ways to reach remote
// destinations, with [Source.Dial]). A [Server] runs the control server.
package connet
