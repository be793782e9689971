// Package control is the control server: it authenticates clients by token,
// tells each client the address it sees it at, records which endpoints each
// client has, and keeps every client informed of the peers it shares an
// endpoint with (their pinned certificates and candidate addresses). It
// decides how each client's NAT maps, from where it and the relays see the
// client (nat.go), so that no client can aim its peers' punch probes. It
// carries no user data.
package control
