// Package endpoint connects connet's tunnels to the outside world as the
// endpoint URLs say: a source listens for local clients (tcp://), a
// destination dials its service (tcp://). Each accepted or dialed socket is
// spliced to one tunnel stream.
package endpoint
