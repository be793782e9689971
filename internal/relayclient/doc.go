// Package relayclient is the client side of relays: it keeps a connection
// to each relay the control server offers (over the client's one UDP
// socket), presents the client's grant there and refreshes it, turns the
// relays it shares with a peer into paths to that peer, and hands the
// streams other clients open through relays to the client.
package relayclient
