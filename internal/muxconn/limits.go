package muxconn

import (
	"errors"
	"fmt"
	"github.com/p2pconnet/connet/internal/restrict"
	"net"
	"net/netip"
	"sync"
)

// Default limits of a Listener. A connection counts from its accept to its
// close; it is handshaking until the server knows its client (see
// Authenticated): through TLS, a WebSocket's upgrade, and the hello or the
// grant that follows. Whoever reaches a limit gets the connection closed
// at once, before any cryptography: it costs a descriptor for a moment,
// never for the handshake timeout.
const (
	// DefaultHandshakesPerAddr: a connet client handshakes once at a
	// time with each server, so 64 lets a NAT with many clients behind it
	// reconnect after a restart in a few rounds of their backoff, while
	// one host that opens connections and sends nothing holds at most 64
	// descriptors until the handshake timeout.
	DefaultHandshakesPerAddr = 64
	// DefaultHandshakes: a TLS handshake takes a round trip and about a
	// millisecond of CPU, so 1024 at once is more than a reconnect storm
	// needs, and it bounds the descriptors and buffers that many hosts
	// together can hold without a certificate.
	DefaultHandshakes = 1024
	// DefaultConnsPerAddr: an office that blocks UDP and sits behind one
	// address reaches the server with all its clients over TCP, one
	// connection each per ingress; 1024 of them leaves room for that and
	// still keeps one address to a sixteenth of DefaultConns.
	DefaultConnsPerAddr = 1024
	// DefaultConns: connet's systemd units allow 65 536 descriptors; a
	// server with three TCP listeners at their limits holds 49 152, which
	// leaves the rest for its UDP sockets, status server and files.
	DefaultConns = 16384
)

// ErrOverLimit is why a connection over one of a Listener's limits was
// closed; the error names the limit.
var ErrOverLimit = errors.New("over the limit")

// Limits bound the connections a Listener holds: Conns in all and
// ConnsPerAddr from one address, Handshakes in all and HandshakesPerAddr
// from one address of those not done with their handshake. An IPv6 address
// counts as its /64, which one host or site usually has for itself. Zero
// means the default.
type Limits struct {
	Conns, ConnsPerAddr           int
	Handshakes, HandshakesPerAddr int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.Conns, DefaultConns)
	def(&l.ConnsPerAddr, DefaultConnsPerAddr)
	def(&l.Handshakes, DefaultHandshakes)
	def(&l.HandshakesPerAddr, DefaultHandshakesPerAddr)
	return l
}

// admission counts a listener's connections against its Limits.
type admission struct {
	lim               Limits
	mu                sync.Mutex
	conns, handshakes int
	byAddr            map[netip.Prefix]*share
}

// share is what one address holds.
type share struct{ conns, handshakes int }

func newAdmission(lim Limits) *admission {
	return &admission{lim: lim.withDefaults(), byAddr: map[netip.Prefix]*share{}}
}

// admit counts raw, from a, as a new connection in its handshake, or
// returns which limit it would pass.
func (ad *admission) admit(raw net.Conn, a netip.Addr) (*limitedConn, error) {
	key := restrict.HostPrefix(a)
	ad.mu.Lock()
	defer ad.mu.Unlock()
	sh := ad.byAddr[key]
	if sh == nil {
		sh = &share{}
	}
	switch {
	case ad.conns >= ad.lim.Conns:
		return nil, fmt.Errorf("%w of %d connections", ErrOverLimit, ad.lim.Conns)
	case sh.conns >= ad.lim.ConnsPerAddr:
		return nil, fmt.Errorf("%w of %d connections from one address", ErrOverLimit, ad.lim.ConnsPerAddr)
	case ad.handshakes >= ad.lim.Handshakes:
		return nil, fmt.Errorf("%w of %d unfinished handshakes", ErrOverLimit, ad.lim.Handshakes)
	case sh.handshakes >= ad.lim.HandshakesPerAddr:
		return nil, fmt.Errorf("%w of %d unfinished handshakes from one address", ErrOverLimit, ad.lim.HandshakesPerAddr)
	}
	ad.byAddr[key] = sh
	sh.conns++
	sh.handshakes++
	ad.conns++
	ad.handshakes++
	return &limitedConn{Conn: raw, ad: ad, key: key, state: handshaking}, nil
}

// set moves c to state, giving back what it held in the one it leaves.
func (ad *admission) set(c *limitedConn, state connState) {
	ad.mu.Lock()
	defer ad.mu.Unlock()
	if state <= c.state {
		return
	}
	sh := ad.byAddr[c.key]
	if c.state == handshaking {
		sh.handshakes--
		ad.handshakes--
	}
	if state == closed {
		sh.conns--
		ad.conns--
		if sh.conns == 0 {
			delete(ad.byAddr, c.key)
		}
	}
	c.state = state
}

type connState uint8

const (
	handshaking connState = iota
	established
	closed
)

// limitedConn is an accepted connection that holds its share of the
// limits until it is closed. Every path that ends a connection closes
// this one (the TLS connection, the multiplexer and the WebSocket over it
// close what is under them).
type limitedConn struct {
	net.Conn
	ad    *admission
	key   netip.Prefix
	state connState // guarded by ad.mu
}

// established ends the connection's handshake.
func (c *limitedConn) established() { c.ad.set(c, established) }

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.ad.set(c, closed)
	return err
}

// handshakeDone ends the handshake of the connection under the TLS
// connection c, if it is one of a Listener's (c may be nil).
func handshakeDone(c net.Conn) {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		if lc, ok := tc.NetConn().(*limitedConn); ok {
			lc.established()
		}
	}
}
