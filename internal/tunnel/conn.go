package tunnel

import (
	"net"

	"github.com/p2pconnet/connet/internal/netpath"
)

// Conn presents a stream as a net.Conn, with the addresses of the path
// that carries it.
type Conn struct {
	netpath.Stream
	Local, Remote net.Addr
}

var _ net.Conn = (*Conn)(nil)

func (c *Conn) LocalAddr() net.Addr  { return c.Local }
func (c *Conn) RemoteAddr() net.Addr { return c.Remote }
