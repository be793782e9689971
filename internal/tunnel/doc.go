// Package tunnel carries one TCP-like connection over one peer stream: the
// source side opens a stream and names the endpoint, the destination side
// answers, and both then move bytes until each direction has ended. It also
// adapts streams to net.Conn and splices them to sockets.
package tunnel
