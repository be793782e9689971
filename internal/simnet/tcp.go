package simnet

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
)

// TCP on the simulated network is a stream between two hosts: a dial
// reaches a listener on the host it names, through at most the dialer's
// NAT (which gives the connection its public address and a port of its
// own; no NAT forwards inbound TCP). A stream carries its bytes in order
// and at once, with no latency or loss (those are UDP's, which the
// simulated NATs are about), within a window per direction: a writer
// waits while the reader is a window behind, as with a real socket.

// window is how many unread bytes one direction of a stream holds before
// its writer waits.
const window = 256 << 10

// backlog is how many dialed connections a listener holds unaccepted;
// beyond it a dial is refused.
const backlog = 128

// Listen binds a TCP listener on the host; address is as for
// ListenPacket. TCP ports are apart from UDP ones.
func (h *Host) Listen(_ context.Context, network, address string) (net.Listener, error) {
	port, err := h.bindPort(network, "tcp", address)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if port == 0 {
		port = h.freeTCPPort()
	}
	if h.listeners[port] != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(h.addr, port)), Err: syscall.EADDRINUSE}
	}
	l := &Listener{host: h, local: netip.AddrPortFrom(h.addr, port), conns: make(chan *TCPConn, backlog), closed: make(chan struct{})}
	h.listeners[port] = l
	return l, nil
}

// DialContext connects to a TCP listener at address ("ip:port"). A
// listener that is not there refuses at once, as a reachable host does;
// an address no host has, or a NAT's public address, fails the same way.
func (h *Host) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if err := supported(network, "tcp"); err != nil {
		return nil, err
	}
	dst, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, fmt.Errorf("simnet: dial %q: %w", address, err)
	}
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(dst), Err: syscall.ECONNREFUSED}
	to, seen := h.net.routeTCP(h, dst.Addr())
	if to == nil {
		return nil, refused
	}
	to.mu.Lock()
	l := to.listeners[dst.Port()]
	to.mu.Unlock()
	if l == nil {
		return nil, refused
	}
	h.mu.Lock()
	local := netip.AddrPortFrom(h.addr, h.freeTCPPort())
	h.tcpPorts[local.Port()] = true
	h.mu.Unlock()
	if !seen.IsValid() {
		seen = local
	}
	client, server := newStream(h, local, dst, seen)
	if !l.queue(server) {
		h.releaseTCPPort(local.Port())
		return nil, refused
	}
	return client, nil
}

// routeTCP finds the host at dst as from reaches it, and the address the
// connection comes from there (the zero address: from's own).
func (n *Network) routeTCP(from *Host, dst netip.Addr) (*Host, netip.AddrPort) {
	if dst == from.addr {
		return from, netip.AddrPort{}
	}
	var seen netip.AddrPort
	if nat := from.nat; nat != nil {
		if h := nat.lanHost(dst); h != nil {
			return h, netip.AddrPort{}
		}
		seen = nat.tcpOutbound()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.public[dst], seen
}

// tcpOutbound picks the public address and port of a new outbound TCP
// connection through the NAT.
func (nat *NAT) tcpOutbound() netip.AddrPort {
	nat.mu.Lock()
	defer nat.mu.Unlock()
	nat.nextTCP++
	if nat.nextTCP < natPortBase {
		nat.nextTCP = natPortBase
	}
	return netip.AddrPortFrom(nat.public, nat.nextTCP)
}

// supported checks that network is proto ("udp" or "tcp") over IPv4.
func supported(network, proto string) error {
	if network != proto && network != proto+"4" {
		return fmt.Errorf("simnet: network %q not supported", network)
	}
	return nil
}

// bindPort checks that network is proto and that address names this host
// (or any address), and returns its port.
func (h *Host) bindPort(network, proto, address string) (uint16, error) {
	if err := supported(network, proto); err != nil {
		return 0, err
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return 0, err
	}
	if host != "" {
		a, err := netip.ParseAddr(host)
		if err != nil || (!a.IsUnspecified() && a != h.addr) {
			return 0, fmt.Errorf("simnet: cannot bind %s on host %s", address, h.addr)
		}
	}
	port, err := netip.ParseAddrPort("0.0.0.0:" + portStr)
	if err != nil {
		return 0, fmt.Errorf("simnet: port %q: %w", portStr, err)
	}
	return port.Port(), nil
}

// freeTCPPort is the next TCP port no listener or connection holds; h.mu
// is held.
func (h *Host) freeTCPPort() uint16 {
	for h.listeners[h.nextTCP] != nil || h.tcpPorts[h.nextTCP] {
		h.nextTCP++
		if h.nextTCP == 0 {
			h.nextTCP = ephemeralBase
		}
	}
	p := h.nextTCP
	h.nextTCP++
	return p
}

func (h *Host) releaseTCPPort(port uint16) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.tcpPorts, port)
}

// Listener is a TCP listener on a simulated host.
type Listener struct {
	host   *Host
	local  netip.AddrPort
	mu     sync.Mutex
	done   bool
	conns  chan *TCPConn
	closed chan struct{}
}

var _ net.Listener = (*Listener)(nil)

// queue hands a dialed connection to Accept, false if the listener is
// closed or its backlog full.
func (l *Listener) queue(c *TCPConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return false
	}
	select {
	case l.conns <- c:
		return true
	default:
		return false
	}
}

// Accept returns the next dialed connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
	}
}

// Close unbinds the listener and resets the connections it did not
// accept.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return &net.OpError{Op: "close", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
	}
	l.done = true
	close(l.closed)
	l.mu.Unlock()
	l.host.mu.Lock()
	if l.host.listeners[l.local.Port()] == l {
		delete(l.host.listeners, l.local.Port())
	}
	l.host.mu.Unlock()
	for {
		select {
		case c := <-l.conns:
			_ = c.Close()
		default:
			return nil
		}
	}
}

// Addr is the listener's address, a *net.TCPAddr.
func (l *Listener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.local) }

// stream is the state both ends of a connection share: one lock, and a
// channel closed (and replaced) on every change, which waiting ends
// watch.
type stream struct {
	mu      sync.Mutex
	changed chan struct{}
}

func (s *stream) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// direction is the bytes in flight one way.
type direction struct {
	buf []byte
	// eof: the writer closed; the reader sees io.EOF once buf is read.
	eof bool
	// reset: the reader closed; the writer's writes fail.
	reset bool
}

// TCPConn is one end of a TCP connection on the simulated network.
type TCPConn struct {
	s *stream
	// host is the host whose port the end holds, nil for an accepted end
	// (its port is the listener's).
	host          *Host
	local, remote netip.AddrPort
	in, out       *direction
	closed        bool
	rd, wd        time.Time
}

var _ net.Conn = (*TCPConn)(nil)

// newStream connects a dialing end on h at local to dst, which sees it
// come from seen.
func newStream(h *Host, local, dst, seen netip.AddrPort) (client, server *TCPConn) {
	s := &stream{changed: make(chan struct{})}
	up, down := &direction{}, &direction{}
	client = &TCPConn{s: s, host: h, local: local, remote: dst, in: down, out: up}
	server = &TCPConn{s: s, local: dst, remote: seen, in: up, out: down}
	return client, server
}

// wait releases the lock until the stream changes or the deadline
// passes, and takes it again.
func (c *TCPConn) wait(deadline time.Time) {
	ch := c.s.changed
	c.s.mu.Unlock()
	defer c.s.mu.Lock()
	if deadline.IsZero() {
		<-ch
		return
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

func past(deadline time.Time) bool { return !deadline.IsZero() && !time.Now().Before(deadline) }

// Read reads what the other end wrote, io.EOF after it closed.
func (c *TCPConn) Read(p []byte) (int, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for {
		switch {
		case c.closed:
			return 0, c.opErr("read", net.ErrClosed)
		case len(c.in.buf) > 0:
			n := copy(p, c.in.buf)
			c.in.buf = c.in.buf[n:]
			c.s.broadcast()
			return n, nil
		case c.in.eof:
			return 0, io.EOF
		case past(c.rd):
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		c.wait(c.rd)
	}
}

// Write writes all of p, waiting while the other end is a window behind.
func (c *TCPConn) Write(p []byte) (int, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	written := 0
	for {
		switch {
		case c.closed:
			return written, c.opErr("write", net.ErrClosed)
		case c.out.reset:
			return written, c.opErr("write", syscall.ECONNRESET)
		case written == len(p):
			return written, nil
		case len(c.out.buf) < window:
			n := min(window-len(c.out.buf), len(p)-written)
			c.out.buf = append(c.out.buf, p[written:written+n]...)
			written += n
			c.s.broadcast()
			continue
		case past(c.wd):
			return written, c.opErr("write", os.ErrDeadlineExceeded)
		}
		c.wait(c.wd)
	}
}

// Close closes the end: the other end reads io.EOF after what was
// written, and its writes fail.
func (c *TCPConn) Close() error {
	c.s.mu.Lock()
	if c.closed {
		c.s.mu.Unlock()
		return c.opErr("close", net.ErrClosed)
	}
	c.closed = true
	c.out.eof = true
	c.in.reset = true
	c.in.buf = nil
	c.s.broadcast()
	c.s.mu.Unlock()
	if c.host != nil {
		c.host.releaseTCPPort(c.local.Port())
	}
	return nil
}

// LocalAddr is the end's address, a *net.TCPAddr.
func (c *TCPConn) LocalAddr() net.Addr { return net.TCPAddrFromAddrPort(c.local) }

// RemoteAddr is the other end's address as this end sees it (a NAT's
// public address for a connection that came through one).
func (c *TCPConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }

// SetDeadline sets both deadlines.
func (c *TCPConn) SetDeadline(t time.Time) error {
	_ = c.SetWriteDeadline(t)
	return c.SetReadDeadline(t)
}

// SetReadDeadline makes reads fail with os.ErrDeadlineExceeded after t.
func (c *TCPConn) SetReadDeadline(t time.Time) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.rd = t
	c.s.broadcast()
	return nil
}

// SetWriteDeadline makes writes fail with os.ErrDeadlineExceeded after t.
func (c *TCPConn) SetWriteDeadline(t time.Time) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.wd = t
	c.s.broadcast()
	return nil
}

func (c *TCPConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
