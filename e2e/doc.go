// Package e2e tests the connet binary end to end: a real control server and
// real clients, each in its own network namespace of a NAT lab (see
// internal/natlab), moving real traffic. Tests assert which path carried it
// from the clients' status JSON and from what crossed the wire.
package e2e
