// Package direct makes and accepts direct QUIC connections between clients:
// it gathers a client's candidate addresses, punches through NATs by dialing
// every candidate of a peer at once while the peer does the same, and turns
// the connections that result into paths of the peer they belong to.
//
// Everything runs over the client's one UDP socket (one quic.Transport), the
// same one that carries the control connection, so the address the control
// server observes is the NAT mapping peers have to dial. The exception is
// the side behind a symmetric NAT in a birthday punch (punch.go): its
// connection runs on the fresh socket whose probe found a way through.
package direct
