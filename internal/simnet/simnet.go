// Package simnet is a small simulated IPv4 network for tests: public
// hosts on an "internet", and NAT boxes with configurable mapping and
// filtering in front of private hosts. A Host is a network.Network: its
// ListenPacket returns a net.PacketConn and its Listen and DialContext TCP
// streams (see tcp.go), so it can stand in for a client's or server's
// network (see connet.ClientNetwork) and carry quic-go connections, and
// the TCP and WebSocket fallback, in process, without root and on any
// machine. A host's UDP can be blocked (SetUDPBlocked), as by a firewall
// that passes only TCP.
//
// It models what hole punching depends on: which external port a NAT picks
// for a flow (RFC 4787 mapping) and which inbound packets it lets through
// (RFC 4787 filtering), plus optional latency and random loss. Packets are
// delivered by the sender's goroutine (or a timer, with latency) into a
// bounded per-socket queue; simnet starts no goroutines of its own, so it
// also runs inside a testing/synctest bubble.
//
// It is not a kernel: no ICMP, no MTU or fragmentation, no IPv6, no TCP
// handshake, latency or loss, no inbound TCP through a NAT, no
// hairpinning through a NAT's public address, no port preservation, no
// conntrack timeouts beyond an optional idle expiry of NAT mappings. The
// NAT lab (internal/natlab) stays the truth for real kernels.
package simnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Behaviour is a NAT's mapping or filtering behaviour (RFC 4787).
type Behaviour int

const (
	// EndpointIndependent: one external port per internal socket whatever
	// the destination (mapping); any remote may send to it (filtering).
	EndpointIndependent Behaviour = iota
	// AddressDependent: a new external port per destination IP (mapping);
	// only IPs the host sent to may send back (filtering).
	AddressDependent
	// AddressAndPortDependent: a new external port per destination IP and
	// port (mapping; with it the NAT is "symmetric"); only the exact
	// IP:port the host sent to may send back (filtering; with
	// endpoint-independent mapping the NAT is a "port-restricted cone").
	AddressAndPortDependent
)

func (b Behaviour) String() string {
	switch b {
	case EndpointIndependent:
		return "endpoint-independent"
	case AddressDependent:
		return "address-dependent"
	case AddressAndPortDependent:
		return "address-and-port-dependent"
	}
	return "Behaviour(" + strconv.Itoa(int(b)) + ")"
}

// QueueLen is how many datagrams a socket holds unread before it drops new
// ones, as a full kernel receive buffer does.
const QueueLen = 1024

// ephemeralBase is where a host's port 0 binds start. NAT external ports
// start at natPortBase. Both are sequential so tests are deterministic.
const (
	ephemeralBase = 50000
	natPortBase   = 40000
)

// Stats counts what happened to datagrams.
type Stats struct {
	Delivered uint64
	// Filtered were refused by a NAT's filtering.
	Filtered uint64
	// NoRoute had no host at the destination address, or no socket at
	// its port, or were sent to a private address from the internet.
	NoRoute uint64
	// Lost were dropped by the simulated loss.
	Lost uint64
	// Overflow found the receiving socket's queue full.
	Overflow uint64
	// Blocked were sent from or to a host whose UDP is blocked.
	Blocked uint64
}

// Network is the internet: it routes datagrams between public addresses.
type Network struct {
	mu      sync.Mutex
	public  map[netip.Addr]*Host // hosts on the internet
	nats    map[netip.Addr]*NAT  // by public address
	latency time.Duration
	loss    float64
	rng     *rand.Rand

	delivered, filtered, noRoute, lost, overflow, blocked atomic.Uint64
}

// New returns an empty network with no latency and no loss.
func New() *Network {
	return &Network{
		public: map[netip.Addr]*Host{},
		nats:   map[netip.Addr]*NAT{},
		rng:    rand.New(rand.NewPCG(1, 2)),
	}
}

// SetLatency delays every datagram by d (one way). Zero delivers at once.
func (n *Network) SetLatency(d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.latency = d
}

// SetLoss drops each datagram with probability p (0 by default). The
// random source is seeded, so one goroutine's sends repeat from run to
// run; with several senders the order of draws follows the scheduler.
func (n *Network) SetLoss(p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.loss = p
}

// Stats returns the counters so far.
func (n *Network) Stats() Stats {
	return Stats{
		Delivered: n.delivered.Load(),
		Filtered:  n.filtered.Load(),
		NoRoute:   n.noRoute.Load(),
		Lost:      n.lost.Load(),
		Overflow:  n.overflow.Load(),
		Blocked:   n.blocked.Load(),
	}
}

// Host adds a host with a public address.
func (n *Network) Host(addr string) *Host {
	a := mustV4(addr)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.public[a] != nil || n.nats[a] != nil {
		panic("simnet: address " + addr + " already in use")
	}
	h := newHost(n, nil, a)
	n.public[a] = h
	return h
}

// NAT adds a NAT box with the given public address and behaviours.
// IdleTimeout, if positive, forgets a mapping that carried no packet for
// that long; by default mappings last forever.
func (n *Network) NAT(public string, mapping, filtering Behaviour, idleTimeout time.Duration) *NAT {
	a := mustV4(public)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.public[a] != nil || n.nats[a] != nil {
		panic("simnet: address " + public + " already in use")
	}
	nat := &NAT{
		net:       n,
		public:    a,
		mapping:   mapping,
		filtering: filtering,
		idle:      idleTimeout,
		lan:       map[netip.Addr]*Host{},
		byFlow:    map[flowKey]*binding{},
		byPort:    map[uint16]*binding{},
		nextPort:  natPortBase,
	}
	n.nats[a] = nat
	return nat
}

// Close closes every UDP socket and TCP listener on the network; blocked
// reads and accepts return.
func (n *Network) Close() {
	n.mu.Lock()
	hosts := make([]*Host, 0, len(n.public))
	for _, h := range n.public {
		hosts = append(hosts, h)
	}
	for _, nat := range n.nats {
		nat.mu.Lock()
		for _, h := range nat.lan {
			hosts = append(hosts, h)
		}
		nat.mu.Unlock()
	}
	n.mu.Unlock()
	for _, h := range hosts {
		h.closeAll()
	}
}

// send routes one datagram from src (a host's own address) towards dst.
func (n *Network) send(from *Host, src, dst netip.AddrPort, b []byte) {
	if from.udpBlocked.Load() {
		n.blocked.Add(1)
		return
	}
	n.mu.Lock()
	lost := n.loss > 0 && n.rng.Float64() < n.loss
	latency := n.latency
	n.mu.Unlock()
	if lost {
		n.lost.Add(1)
		return
	}
	// Route (and so translate) at once: the NAT sees the datagram when it
	// is sent; only its arrival is late.
	to, src, dst, ok := n.route(from, src, dst)
	if !ok {
		return
	}
	if to.udpBlocked.Load() {
		n.blocked.Add(1)
		return
	}
	if latency > 0 {
		time.AfterFunc(latency, func() { to.deliver(src, dst.Port(), b) })
		return
	}
	to.deliver(src, dst.Port(), b)
}

// route finds the host a datagram reaches and the source and destination
// it arrives with, translating through NATs on the way.
func (n *Network) route(from *Host, src, dst netip.AddrPort) (*Host, netip.AddrPort, netip.AddrPort, bool) {
	if dst.Addr() == from.addr {
		return from, src, dst, true
	}
	if nat := from.nat; nat != nil {
		if h := nat.lanHost(dst.Addr()); h != nil {
			return h, src, dst, true // same LAN: no translation
		}
		src = nat.outbound(src, dst)
	}
	n.mu.Lock()
	h, nat := n.public[dst.Addr()], n.nats[dst.Addr()]
	n.mu.Unlock()
	switch {
	case h != nil:
		return h, src, dst, true
	case nat != nil:
		h, internal, ok := nat.inbound(src, dst)
		return h, src, internal, ok
	}
	n.noRoute.Add(1)
	return nil, src, dst, false
}

// NAT is a NAT box: private hosts behind one public address.
type NAT struct {
	net       *Network
	public    netip.Addr
	mapping   Behaviour
	filtering Behaviour
	idle      time.Duration

	mu       sync.Mutex
	lan      map[netip.Addr]*Host
	byFlow   map[flowKey]*binding
	byPort   map[uint16]*binding
	nextPort uint16
	// nextTCP is the public port of the last outbound TCP connection.
	nextTCP uint16
	// random, if set, picks external ports at random (see RandomPorts).
	random *rand.Rand
}

// RandomPorts makes the NAT pick each new mapping's external port at
// random among 1024-65535, as Linux's "masquerade fully-random" does,
// from a source seeded with seed (so runs repeat). Sequential ports (the
// default) would let a peer guess the next mapping; random ones leave only
// a search, which is what punching through a symmetric NAT must cope with.
func (nat *NAT) RandomPorts(seed uint64) {
	nat.mu.Lock()
	defer nat.mu.Unlock()
	nat.random = rand.New(rand.NewPCG(seed, seed^0x5eed))
}

// flowKey identifies a mapping: the internal socket and as much of the
// destination as the mapping behaviour distinguishes.
type flowKey struct {
	internal netip.AddrPort
	remote   netip.AddrPort
}

type binding struct {
	key      flowKey
	internal netip.AddrPort
	port     uint16
	// sentTo holds every remote the internal socket sent to through this
	// binding: the filtering decides from it.
	sentTo   map[netip.AddrPort]bool
	lastUsed time.Time
}

// Public returns the NAT's public address.
func (nat *NAT) Public() netip.Addr { return nat.public }

// Host adds a private host behind the NAT.
func (nat *NAT) Host(addr string) *Host {
	a := mustV4(addr)
	nat.mu.Lock()
	defer nat.mu.Unlock()
	if nat.lan[a] != nil {
		panic("simnet: address " + addr + " already in use")
	}
	h := newHost(nat.net, nat, a)
	nat.lan[a] = h
	return h
}

// Mappings returns how many mappings the NAT holds.
func (nat *NAT) Mappings() int {
	nat.mu.Lock()
	defer nat.mu.Unlock()
	return len(nat.byPort)
}

func (nat *NAT) lanHost(a netip.Addr) *Host {
	nat.mu.Lock()
	defer nat.mu.Unlock()
	return nat.lan[a]
}

// outbound returns the external source of a datagram from internal src to
// dst, creating the mapping if needed.
func (nat *NAT) outbound(src, dst netip.AddrPort) netip.AddrPort {
	key := flowKey{internal: src}
	switch nat.mapping {
	case AddressDependent:
		key.remote = netip.AddrPortFrom(dst.Addr(), 0)
	case AddressAndPortDependent:
		key.remote = dst
	}
	now := time.Now()
	nat.mu.Lock()
	defer nat.mu.Unlock()
	b := nat.byFlow[key]
	if b != nil && nat.expired(b, now) {
		nat.remove(b)
		b = nil
	}
	if b == nil {
		b = &binding{key: key, internal: src, port: nat.allocPort(), sentTo: map[netip.AddrPort]bool{}}
		nat.byFlow[key] = b
		nat.byPort[b.port] = b
	}
	b.sentTo[dst] = true
	b.lastUsed = now
	return netip.AddrPortFrom(nat.public, b.port)
}

// inbound translates the destination of a datagram from the internet to
// the NAT's public address, if a mapping exists and its filtering lets src
// through.
func (nat *NAT) inbound(src, dst netip.AddrPort) (*Host, netip.AddrPort, bool) {
	now := time.Now()
	nat.mu.Lock()
	b := nat.byPort[dst.Port()]
	if b != nil && nat.expired(b, now) {
		nat.remove(b)
		b = nil
	}
	if b == nil {
		nat.mu.Unlock()
		nat.net.noRoute.Add(1)
		return nil, dst, false
	}
	ok := false
	switch nat.filtering {
	case EndpointIndependent:
		ok = true
	case AddressDependent:
		for r := range b.sentTo {
			if r.Addr() == src.Addr() {
				ok = true
				break
			}
		}
	case AddressAndPortDependent:
		ok = b.sentTo[src]
	}
	if !ok {
		nat.mu.Unlock()
		nat.net.filtered.Add(1)
		return nil, dst, false
	}
	b.lastUsed = now
	h := nat.lan[b.internal.Addr()]
	nat.mu.Unlock()
	if h == nil {
		nat.net.noRoute.Add(1)
		return nil, dst, false
	}
	return h, b.internal, true
}

func (nat *NAT) expired(b *binding, now time.Time) bool {
	return nat.idle > 0 && now.Sub(b.lastUsed) > nat.idle
}

func (nat *NAT) remove(b *binding) {
	delete(nat.byFlow, b.key)
	delete(nat.byPort, b.port)
}

// allocPort picks the next free external port: sequential by default,
// which keeps tests repeatable, or random (RandomPorts).
func (nat *NAT) allocPort() uint16 {
	for nat.random != nil {
		if p := uint16(1024 + nat.random.IntN(65536-1024)); nat.byPort[p] == nil {
			return p
		}
	}
	for {
		p := nat.nextPort
		nat.nextPort++
		if nat.nextPort == 0 {
			nat.nextPort = natPortBase
		}
		if nat.byPort[p] == nil {
			return p
		}
	}
}

// Host is a machine with one IPv4 address, public or behind a NAT.
type Host struct {
	net  *Network
	nat  *NAT // nil on the internet
	addr netip.Addr

	// udpBlocked drops every datagram from or to the host.
	udpBlocked atomic.Bool

	mu       sync.Mutex
	conns    map[uint16]*Conn
	nextPort uint16
	// TCP: listeners by port, the ports dialed connections hold, and
	// where the search for a free port starts.
	listeners map[uint16]*Listener
	tcpPorts  map[uint16]bool
	nextTCP   uint16
}

func newHost(n *Network, nat *NAT, a netip.Addr) *Host {
	return &Host{net: n, nat: nat, addr: a, conns: map[uint16]*Conn{}, nextPort: ephemeralBase,
		listeners: map[uint16]*Listener{}, tcpPorts: map[uint16]bool{}, nextTCP: ephemeralBase}
}

// SetUDPBlocked drops every datagram the host sends or is sent while
// blocked is set, as a firewall that passes only TCP does; TCP is not
// touched.
func (h *Host) SetUDPBlocked(blocked bool) { h.udpBlocked.Store(blocked) }

// Addr returns the host's own address.
func (h *Host) Addr() netip.Addr { return h.addr }

// ListenPacket binds a UDP socket on the host. address is "host:port";
// the host part may be empty, 0.0.0.0 or the host's address, and the
// socket's LocalAddr is always the host's address, so the address a client
// lists as its own is the private one behind a NAT, as on a real machine.
// With Listen and DialContext (tcp.go), it satisfies network.Network.
func (h *Host) ListenPacket(_ context.Context, network, address string) (net.PacketConn, error) {
	port, err := h.bindPort(network, "udp", address)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if port == 0 {
		for h.conns[h.nextPort] != nil {
			h.nextPort++
		}
		port = h.nextPort
		h.nextPort++
	}
	if h.conns[port] != nil {
		return nil, &net.OpError{Op: "listen", Net: "udp", Addr: net.UDPAddrFromAddrPort(netip.AddrPortFrom(h.addr, port)), Err: errors.New("address already in use")}
	}
	c := &Conn{
		host:     h,
		local:    netip.AddrPortFrom(h.addr, port),
		ready:    make(chan struct{}, 1),
		closed:   make(chan struct{}),
		rdChange: make(chan struct{}),
	}
	h.conns[port] = c
	return c, nil
}

func (h *Host) deliver(src netip.AddrPort, port uint16, b []byte) {
	h.mu.Lock()
	c := h.conns[port]
	h.mu.Unlock()
	if c == nil {
		h.net.noRoute.Add(1)
		return
	}
	c.enqueue(datagram{src: src, b: b})
}

func (h *Host) closeAll() {
	h.mu.Lock()
	conns := make([]io.Closer, 0, len(h.conns)+len(h.listeners))
	for _, c := range h.conns {
		conns = append(conns, c)
	}
	for _, l := range h.listeners {
		conns = append(conns, l)
	}
	h.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

type datagram struct {
	src netip.AddrPort
	b   []byte
}

// Conn is a UDP socket on a simulated host. It is safe for concurrent use.
type Conn struct {
	host  *Host
	local netip.AddrPort

	mu       sync.Mutex
	queue    []datagram
	isClosed bool
	rd, wd   time.Time
	// ready holds a token while the queue may be non-empty.
	ready chan struct{}
	// closed is closed by Close.
	closed chan struct{}
	// rdChange is closed and replaced when the read deadline changes, so
	// a blocked read re-evaluates it.
	rdChange chan struct{}
}

var _ net.PacketConn = (*Conn)(nil)

func (c *Conn) enqueue(d datagram) {
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		c.host.net.noRoute.Add(1)
		return
	}
	if len(c.queue) >= QueueLen {
		c.mu.Unlock()
		c.host.net.overflow.Add(1)
		return
	}
	c.queue = append(c.queue, d)
	c.mu.Unlock()
	c.host.net.delivered.Add(1)
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// ReadFrom reads one datagram; the source is a *net.UDPAddr.
func (c *Conn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		if c.isClosed {
			c.mu.Unlock()
			return 0, nil, c.opErr("read", net.ErrClosed)
		}
		if len(c.queue) > 0 {
			d := c.queue[0]
			c.queue[0] = datagram{}
			c.queue = c.queue[1:]
			more := len(c.queue) > 0
			c.mu.Unlock()
			if more {
				select {
				case c.ready <- struct{}{}:
				default:
				}
			}
			return copy(p, d.b), net.UDPAddrFromAddrPort(d.src), nil
		}
		deadline, change := c.rd, c.rdChange
		c.mu.Unlock()

		var timer *time.Timer
		var expired <-chan time.Time
		if !deadline.IsZero() {
			wait := time.Until(deadline)
			if wait <= 0 {
				return 0, nil, c.opErr("read", os.ErrDeadlineExceeded)
			}
			timer = time.NewTimer(wait)
			expired = timer.C
		}
		select {
		case <-c.ready:
		case <-c.closed:
		case <-change:
		case <-expired:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// WriteTo sends one datagram to addr, a *net.UDPAddr. Writes never block:
// a datagram that cannot be delivered is dropped, as UDP does.
func (c *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, c.opErr("write", fmt.Errorf("simnet: address %v is not a *net.UDPAddr", addr))
	}
	dst := ua.AddrPort()
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	c.mu.Lock()
	closed, wd := c.isClosed, c.wd
	c.mu.Unlock()
	if closed {
		return 0, c.opErr("write", net.ErrClosed)
	}
	if !wd.IsZero() && !time.Now().Before(wd) {
		return 0, c.opErr("write", os.ErrDeadlineExceeded)
	}
	c.host.net.send(c.host, c.local, dst, append([]byte(nil), p...))
	return len(p), nil
}

// Close unbinds the socket; blocked and later reads and writes fail with
// net.ErrClosed.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return c.opErr("close", net.ErrClosed)
	}
	c.isClosed = true
	c.queue = nil
	close(c.closed)
	c.mu.Unlock()
	c.host.mu.Lock()
	if c.host.conns[c.local.Port()] == c {
		delete(c.host.conns, c.local.Port())
	}
	c.host.mu.Unlock()
	return nil
}

// LocalAddr returns the socket's address as a *net.UDPAddr.
func (c *Conn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.local) }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	_ = c.SetWriteDeadline(t)
	return c.SetReadDeadline(t)
}

// SetReadDeadline makes reads fail with os.ErrDeadlineExceeded after t.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rd = t
	close(c.rdChange)
	c.rdChange = make(chan struct{})
	return nil
}

// SetWriteDeadline makes writes fail with os.ErrDeadlineExceeded after t.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wd = t
	return nil
}

// SetReadBuffer and SetWriteBuffer accept any size: quic-go asks for
// bigger buffers and logs a warning for sockets that cannot be asked.
func (c *Conn) SetReadBuffer(int) error { return nil }

// SetWriteBuffer: see SetReadBuffer.
func (c *Conn) SetWriteBuffer(int) error { return nil }

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.LocalAddr(), Err: err}
}

func mustV4(s string) netip.Addr {
	a := netip.MustParseAddr(s)
	if !a.Is4() {
		panic("simnet: IPv4 only: " + s)
	}
	return a
}
