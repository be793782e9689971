// Package control is the control server: it authenticates clients by token,
// tells each client the address it sees it at, records which endpoints each
// client has, and keeps every client informed of the peers it shares an
// endpoint with (their pinned certificates and candidate addresses). It
// carries no user data.
package control
