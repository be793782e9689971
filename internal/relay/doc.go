// Package relay is the relay server: it carries streams between two clients
// that cannot reach each other directly. A client is admitted on a grant
// signed by the control server, so the relay never asks the control server
// about a connection. For each relayed connection the source names the
// destination client; the relay checks that both grants pair them (a source
// and a destination endpoint of one name, neither limited to direct routes),
// opens a stream to the destination and splices the two. What flows through
// is end-to-end between the clients (and encrypted when they ask for it).
package relay
