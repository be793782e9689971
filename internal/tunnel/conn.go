package tunnel

import (
	"net"
	"time"

	"github.com/p2pconnet/connet/internal/path"
)

// Conn presents a stream as a net.Conn, with the addresses of the path
// that carries it.
type Conn struct {
	path.Stream
	Local, Remote net.Addr
}

var _ net.Conn = (*Conn)(nil)

func (c *Conn) LocalAddr() net.Addr  { return c.Local }
func (c *Conn) RemoteAddr() net.Addr { return c.Remote }

// SetReadDeadline and SetWriteDeadline set both deadlines: streams do not
// separate them, and connet's own users set both at once.
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.Stream.SetDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.Stream.SetDeadline(t) }
