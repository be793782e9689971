package ingress

import (
	"errors"
	"net"
	"syscall"

	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/quic-go/quic-go"
)

// Pair is what one server ingress listens with: QUIC, TCP (and WebSocket
// over TLS) beside it, or both.
type Pair struct {
	QUIC      *quic.Listener
	Transport *quic.Transport
	TCP       *muxconn.Listener
}

// PairConfig describes a Pair: cfg for both listeners, whether each
// transport is served, TCPAddr (where TCP listens; empty: at the port UDP
// bound) and MaxStreams (per TCP client; 0: the multiplexer's default).
type PairConfig struct {
	Config
	QUIC, TCP, WSS bool
	TCPAddr        string
	MaxStreams     uint32
}

// pickTries bounds the ports tried for an address with port 0.
const pickTries = 8

// ListenPair opens the listeners of pc. When TCP follows UDP's port and
// the address asks for any port (port 0), a port free for UDP but taken on
// TCP is given back and another one picked, a few times: the two must
// share a port, and nobody chose this one.
func ListenPair(pc PairConfig) (Pair, error) {
	for try := 1; ; try++ {
		var p Pair
		var bound net.Addr
		if pc.QUIC {
			ln, tr, err := Listen(pc.Config)
			if err != nil {
				return Pair{}, err
			}
			p.QUIC, p.Transport, bound = ln, tr, tr.Conn.LocalAddr()
		}
		if !pc.TCP && !pc.WSS {
			return p, nil
		}
		ln, err := ListenTCP(pc.Config, TCPAddr(pc.Addr, pc.TCPAddr, bound), pc.MaxStreams, pc.TCP, pc.WSS)
		if err == nil {
			p.TCP = ln
			return p, nil
		}
		if p.Transport != nil {
			_ = Close(p.Transport)
		}
		if !pc.QUIC || pc.TCPAddr != "" || !anyPort(pc.Addr) || !errors.Is(err, syscall.EADDRINUSE) || try == pickTries {
			return Pair{}, err
		}
	}
}

// anyPort tells whether addr leaves the port to the system.
func anyPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}
