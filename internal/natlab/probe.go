package natlab

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mapping is how a NAT maps one local UDP socket to public ports.
type Mapping int

const (
	MappingUnknown Mapping = iota
	// NoNAT: the server sees the host's own address and port.
	NoNAT
	// EndpointIndependent: one public address:port for every destination.
	EndpointIndependent
	// EndpointDependent: the public port depends on the destination.
	EndpointDependent
	// NoUDP: no UDP gets out at all.
	NoUDP
)

func (m Mapping) String() string {
	switch m {
	case NoNAT:
		return "no NAT"
	case EndpointIndependent:
		return "endpoint-independent mapping"
	case EndpointDependent:
		return "endpoint-dependent mapping"
	case NoUDP:
		return "outbound UDP blocked"
	}
	return "unknown mapping"
}

// Filtering is which unsolicited packets reach a host's public mapping.
type Filtering int

const (
	FilteringUnknown Filtering = iota
	// Open: packets from any address and port get in.
	Open
	// AddressDependent: only from addresses the host has sent to.
	AddressDependent
	// AddressAndPortDependent: only from address:port pairs the host has
	// sent to.
	AddressAndPortDependent
)

func (f Filtering) String() string {
	switch f {
	case Open:
		return "open filtering"
	case AddressDependent:
		return "address-dependent filtering"
	case AddressAndPortDependent:
		return "address-and-port-dependent filtering"
	}
	return "unknown filtering"
}

// NATBehavior is what stands in front of a host, as a probe sees it.
type NATBehavior struct {
	Mapping   Mapping
	Filtering Filtering
}

func (b NATBehavior) String() string { return b.Mapping.String() + ", " + b.Filtering.String() }

// ProbeResult is the outcome of Probe.
type ProbeResult struct {
	NATBehavior
	// Local is the probing socket; Mapped is how the server saw it from
	// Server.Addrs[0]:P, Server.Addrs[1]:P and Server.Addrs[1]:Q.
	Local  netip.AddrPort
	Mapped [3]netip.AddrPort
	// FromOtherPort and FromOtherAddr tell whether an unsolicited packet to
	// the mapping of a socket that only sent to Server.Addrs[0]:P got in,
	// from Server.Addrs[0]:Q and from Server.Addrs[1]:Q respectively.
	FromOtherPort, FromOtherAddr bool
}

func (r ProbeResult) String() string {
	in := func(b bool) string {
		if b {
			return "in"
		}
		return "dropped"
	}
	return fmt.Sprintf("%v (local %v, mapped %v %v %v, unsolicited from other port %s, from other address %s)",
		r.NATBehavior, r.Local, r.Mapped[0], r.Mapped[1], r.Mapped[2], in(r.FromOtherPort), in(r.FromOtherAddr))
}

// ExpectedNAT is how the NATs in front of h should behave by construction:
// none for a public host; a fully-random NAT anywhere on the path makes
// the mapping endpoint-dependent; every NAT filters by address and port.
func (l *Lab) ExpectedNAT(h *Host) NATBehavior {
	if h.NAT == nil {
		return NATBehavior{NoNAT, Open}
	}
	m := EndpointIndependent
	for n := h.NAT; n != nil; n = n.Router.NAT {
		if n.Kind == UDPBlockingNAT {
			return NATBehavior{NoUDP, FilteringUnknown}
		}
		if n.Kind == SymmetricNAT {
			m = EndpointDependent
		}
	}
	return NATBehavior{m, AddressAndPortDependent}
}

// VerifyNATs probes A and B and fails the test if either one's NAT does not
// behave as ExpectedNAT says. The results are logged.
func (l *Lab) VerifyNATs(t testing.TB) {
	t.Helper()
	hosts := []*Host{l.A, l.B}
	results := make([]ProbeResult, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() { results[i], errs[i] = l.probe(h) })
	}
	wg.Wait()
	for i, h := range hosts {
		if errs[i] != nil {
			t.Errorf("natlab: %s: probe %s: %v", l.Topology, h.Role, errs[i])
			continue
		}
		want := l.ExpectedNAT(h)
		if results[i].NATBehavior != want {
			t.Errorf("natlab: %s: %s probed %v; want %v", l.Topology, h.Role, results[i], want)
			continue
		}
		t.Logf("natlab: %s: %s: %v", l.Topology, h.Role, results[i])
	}
}

// Probe classifies the NAT in front of h by experiment. It uses fresh
// sockets on both sides and afterwards deletes the conntrack entries it
// made in the routers (with conntrack(8), when installed), so it does not
// disturb later traffic.
func (l *Lab) Probe(t testing.TB, h *Host) ProbeResult {
	t.Helper()
	r, err := l.probe(h)
	if err != nil {
		t.Fatalf("natlab: probe %s: %v", h.Role, err)
	}
	return r
}

// Probe timing: how long to wait for one reply or unsolicited packet, and
// how many times to try. Absence of a packet is only concluded after all
// tries.
const (
	probeWait  = 300 * time.Millisecond
	probeTries = 3
	// queryTries bounds the retries of a query that expects a reply: more
	// than probeTries, since a slow CI machine can lose a few windows and
	// only a missing packet costs time.
	queryTries = 10
)

func (l *Lab) probe(h *Host) (ProbeResult, error) {
	var r ProbeResult
	srv, err := startEchoServers(l.Server)
	if err != nil {
		return r, err
	}
	defer srv.close()

	mapSock, err := h.ListenUDP(netip.AddrPortFrom(h.Addr, 0).String())
	if err != nil {
		return r, err
	}
	defer mapSock.Close()
	r.Local = mapSock.LocalAddr().(*net.UDPAddr).AddrPort()
	for i, to := range []netip.AddrPort{srv.addr(s1P), srv.addr(s2P), srv.addr(s2Q)} {
		if r.Mapped[i], err = query(mapSock, to); err != nil {
			if i == 0 && errors.Is(err, errNoReply) {
				// Not a single answer: UDP does not get out (VerifyNATs
				// says whether that was expected).
				r.Mapping = NoUDP
				return r, nil
			}
			return r, err
		}
	}
	switch {
	case r.Mapped[0] == r.Local && r.Mapped[1] == r.Local && r.Mapped[2] == r.Local:
		r.Mapping = NoNAT
	case r.Mapped[0] == r.Mapped[1] && r.Mapped[1] == r.Mapped[2]:
		r.Mapping = EndpointIndependent
	default:
		r.Mapping = EndpointDependent
	}

	// Filtering, with a socket that has only talked to s1P.
	filtSock, err := h.ListenUDP(netip.AddrPortFrom(h.Addr, 0).String())
	if err != nil {
		return r, err
	}
	defer filtSock.Close()
	mapped, err := query(filtSock, srv.addr(s1P))
	if err != nil {
		return r, err
	}
	if r.FromOtherPort, r.FromOtherAddr, err = unsolicited(filtSock, mapped, srv); err != nil {
		return r, err
	}
	switch {
	case r.FromOtherAddr:
		r.Filtering = Open
	case r.FromOtherPort:
		r.Filtering = AddressDependent
	default:
		r.Filtering = AddressAndPortDependent
	}

	if err := h.forgetFlows(srv.ports()); err != nil {
		return r, err
	}
	return r, nil
}

// unsolicited sends packets to mapped from s1Q (same address as the one the
// socket talked to, other port) and s2Q (other address) and reports which
// reached c.
func unsolicited(c *net.UDPConn, mapped netip.AddrPort, srv *echoServers) (fromPort, fromAddr bool, err error) {
	nonce := rand.Text()
	buf := make([]byte, 1500)
	for range probeTries {
		if !fromPort {
			if _, err := srv.conns[s1Q].WriteToUDPAddrPort([]byte("natlab-filter port "+nonce), mapped); err != nil {
				return false, false, fmt.Errorf("natlab: send unsolicited: %w", err)
			}
		}
		if !fromAddr {
			if _, err := srv.conns[s2Q].WriteToUDPAddrPort([]byte("natlab-filter addr "+nonce), mapped); err != nil {
				return false, false, fmt.Errorf("natlab: send unsolicited: %w", err)
			}
		}
		if err := c.SetReadDeadline(time.Now().Add(probeWait)); err != nil {
			return false, false, fmt.Errorf("natlab: %w", err)
		}
		for !(fromPort && fromAddr) {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if isTimeout(err) {
				break
			}
			if err != nil {
				return false, false, fmt.Errorf("natlab: read: %w", err)
			}
			switch string(buf[:n]) {
			case "natlab-filter port " + nonce:
				fromPort = true
			case "natlab-filter addr " + nonce:
				fromAddr = true
			}
		}
		if fromPort && fromAddr {
			break
		}
	}
	return fromPort, fromAddr, nil
}

// query asks the echo server at to how it sees c, retrying a few times.
func query(c *net.UDPConn, to netip.AddrPort) (netip.AddrPort, error) {
	nonce := rand.Text()
	buf := make([]byte, 1500)
	for range queryTries {
		if _, err := c.WriteToUDPAddrPort([]byte("natlab-probe "+nonce), to); err != nil {
			return netip.AddrPort{}, fmt.Errorf("natlab: query %v: %w", to, err)
		}
		if err := c.SetReadDeadline(time.Now().Add(probeWait)); err != nil {
			return netip.AddrPort{}, fmt.Errorf("natlab: %w", err)
		}
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if isTimeout(err) {
				break
			}
			if err != nil {
				return netip.AddrPort{}, fmt.Errorf("natlab: query %v: %w", to, err)
			}
			seen, ok := strings.CutPrefix(string(buf[:n]), "natlab-seen "+nonce+" ")
			if !ok {
				continue // a late reply to an earlier query
			}
			ap, err := netip.ParseAddrPort(seen)
			if err != nil {
				return netip.AddrPort{}, fmt.Errorf("natlab: query %v: bad reply %q: %w", to, seen, err)
			}
			return ap, nil
		}
	}
	return netip.AddrPort{}, fmt.Errorf("natlab: query %v from %v: %w after %d tries", to, c.LocalAddr(), errNoReply, queryTries)
}

// errNoReply is a query that never got an answer.
var errNoReply = errors.New("no reply")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Echo sockets of a probe in the server namespace: ports P and Q on each
// server address.
const (
	s1P = iota
	s2P
	s1Q
	s2Q
	numEcho
)

type echoServers struct {
	conns [numEcho]*net.UDPConn
	wg    sync.WaitGroup
}

// startEchoServers opens fresh echo sockets on both server addresses (the
// same port number on each, so that only the address differs) and answers
// "natlab-probe <nonce>" with "natlab-seen <nonce> <source addr:port>".
func startEchoServers(server *Host) (*echoServers, error) {
	e := &echoServers{}
	for _, pair := range [][2]int{{s1P, s2P}, {s1Q, s2Q}} {
		if err := e.listenPair(server, pair[0], pair[1]); err != nil {
			e.close()
			return nil, err
		}
	}
	for _, c := range e.conns {
		e.wg.Go(func() { echo(c) })
	}
	return e, nil
}

// maxPortTries bounds the search for a port free on both server addresses.
const maxPortTries = 20

func (e *echoServers) listenPair(server *Host, i1, i2 int) error {
	var errs []error
	for range maxPortTries {
		c1, err := server.ListenUDP(netip.AddrPortFrom(server.Addrs[0], 0).String())
		if err != nil {
			return err
		}
		port := c1.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		c2, err := server.ListenUDP(netip.AddrPortFrom(server.Addrs[1], port).String())
		if err != nil {
			c1.Close()
			errs = append(errs, err)
			continue
		}
		e.conns[i1], e.conns[i2] = c1, c2
		return nil
	}
	return fmt.Errorf("natlab: no port free on both server addresses: %w", errors.Join(errs...))
}

func echo(c *net.UDPConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed
		}
		if nonce, ok := strings.CutPrefix(string(buf[:n]), "natlab-probe "); ok {
			reply := "natlab-seen " + nonce + " " + netip.AddrPortFrom(from.Addr().Unmap(), from.Port()).String()
			_, _ = c.WriteToUDPAddrPort([]byte(reply), from)
		}
	}
}

func (e *echoServers) addr(i int) netip.AddrPort {
	ap := e.conns[i].LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func (e *echoServers) ports() []uint16 {
	return []uint16{e.addr(s1P).Port(), e.addr(s1Q).Port()}
}

func (e *echoServers) close() {
	for _, c := range e.conns {
		if c != nil {
			c.Close()
		}
	}
	e.wg.Wait()
}

// forgetFlows deletes the conntrack entries of UDP flows to the given
// server ports in every router in front of h, so that a probe leaves no
// state that could shape later mappings. Without conntrack(8) the entries
// are left to expire.
func (h *Host) forgetFlows(ports []uint16) error {
	if _, err := exec.LookPath("conntrack"); err != nil {
		return nil
	}
	for n := h.NAT; n != nil; n = n.Router.NAT {
		for _, p := range ports {
			out, err := n.Router.Run(context.Background(), "conntrack", "-D", "-p", "udp", "--orig-port-dst", strconv.Itoa(int(p)))
			if err != nil && !strings.Contains(out, "0 flow entries") {
				return fmt.Errorf("natlab: forget probe flows in %s: %w", n.Router.Name, err)
			}
		}
	}
	return nil
}
