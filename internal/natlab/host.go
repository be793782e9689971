package natlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/vishvananda/netns"
)

// Host is one network namespace of a lab: the server, a client, or a router.
type Host struct {
	// Name is the network namespace name (for ip netns exec).
	Name string
	// Role is the short role of the namespace, also the end of Name:
	// "srv", "a", "b", "ra"/"rb" (the NAT in front of A/B), "ca" (the
	// carrier NAT in front of A's router) or "net" (the internet).
	Role string
	// Addr is the host's own primary address. For a router it is the WAN
	// address.
	Addr netip.Addr
	// Addrs lists all addresses of the host; Addrs[0] == Addr. The server
	// has two public addresses; a router lists its WAN then its LAN address.
	Addrs []netip.Addr
	// PublicAddr is the address the internet sees for this host: Addr for a
	// public host, else the WAN address of the outermost NAT in front of it.
	PublicAddr netip.Addr
	// NAT is the NAT directly in front of the host, nil on the internet.
	NAT *NAT
	// Addr6 is the host's global IPv6 address in the V6 topologies (for a
	// router, its WAN address), else invalid. IPv6 is routed, not NATed.
	Addr6 netip.Addr

	ns netns.NsHandle
}

// NAT describes a NAT router in front of a host.
type NAT struct {
	Kind NATKind
	// Router is the router's namespace. Router.Addr is its WAN address and
	// Router.NAT the NAT in front of it (the carrier NAT in DoubleNAT).
	Router *Host
	// LAN is the network behind the router; Gateway is the router's address
	// on it.
	LAN     netip.Prefix
	Gateway netip.Addr
}

func (h *Host) String() string { return h.Name }

// Do runs fn with the calling goroutine locked to an OS thread that is
// switched into the host's network namespace. Sockets created inside fn
// belong to the namespace for their whole life and may be used from any
// goroutine afterwards; goroutines started inside fn do NOT run in the
// namespace.
func (h *Host) Do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("natlab: get current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(h.ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("natlab: enter netns %s: %w", h.Name, err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// The thread is stuck in the lab namespace: keep it locked so
			// that it dies with this goroutine instead of running others.
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// ListenUDP opens a UDP socket in the namespace; addr is "ip:port" with a
// literal or empty ip (see checkListenAddr). The socket is IPv6 for an
// IPv6 literal, else IPv4.
func (h *Host) ListenUDP(addr string) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := h.Do(func() error {
		if err := checkListenAddr(addr); err != nil {
			return err
		}
		network := "udp4"
		if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Is6() {
			network = "udp6"
		}
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			return err
		}
		c = pc.(*net.UDPConn)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("natlab: listen udp %s in %s: %w", addr, h.Name, err)
	}
	return c, nil
}

// ListenTCP opens a TCP listener in the namespace; addr is "ip:port" with
// a literal or empty ip (see checkListenAddr).
func (h *Host) ListenTCP(addr string) (net.Listener, error) {
	var l net.Listener
	err := h.Do(func() error {
		if err := checkListenAddr(addr); err != nil {
			return err
		}
		var err error
		l, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("natlab: listen tcp %s in %s: %w", addr, h.Name, err)
	}
	return l, nil
}

// checkListenAddr rejects host names: resolving one may run on another
// goroutine, hence another thread, outside the namespace.
func checkListenAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("need a literal IP address: %w", err)
		}
	}
	return nil
}

// DialTCP connects from the namespace to addr, which must be a literal
// "ip:port": a host name would make the resolver (and, with several
// addresses, racing dial goroutines) run outside the namespace.
func (h *Host) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	return h.dial(ctx, "tcp", addr)
}

func (h *Host) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if _, err := netip.ParseAddrPort(addr); err != nil {
		return nil, fmt.Errorf("natlab: dial %s from %s: need a literal ip:port: %w", addr, h.Name, err)
	}
	var c net.Conn
	err := h.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("natlab: dial %s from %s: %w", addr, h.Name, err)
	}
	return c, nil
}

// HTTPClient returns a client whose connections are dialed in the
// namespace. Its Transport is an *http.Transport (set TLSClientConfig on it
// as needed); it ignores proxy environment variables and only accepts
// literal IP addresses in URLs.
func (h *Host) HTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         h.dial,
			TLSHandshakeTimeout: 10 * time.Second,
			IdleConnTimeout:     30 * time.Second,
		},
		Timeout: 30 * time.Second,
	}
}

// maxHTTPBody bounds what HTTPGet reads.
const maxHTTPBody = 16 << 20

// HTTPGet fetches url from the namespace and returns the body; a status
// other than 200 is an error.
func (h *Host) HTTPGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("natlab: GET %s: %w", url, err)
	}
	client := h.HTTPClient()
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("natlab: GET %s from %s: %w", url, h.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPBody))
	if err != nil {
		return nil, fmt.Errorf("natlab: GET %s from %s: read body: %w", url, h.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("natlab: GET %s from %s: %s: %.200s", url, h.Name, resp.Status, body)
	}
	return body, nil
}

// Run runs a short command in the namespace and returns its combined
// output (use Start for long-running processes).
func (h *Host) Run(ctx context.Context, argv ...string) (string, error) {
	return run(ctx, "", h.argv(argv)...)
}

// Command returns an unstarted command that runs argv in the namespace via
// "ip netns exec", which execs argv directly (so the PID is argv's). Set Env
// or Dir on it and pass it to StartCmd.
func (h *Host) Command(argv ...string) *exec.Cmd {
	a := h.argv(argv)
	return exec.Command(a[0], a[1:]...)
}

func (h *Host) argv(argv []string) []string {
	return append([]string{"ip", "netns", "exec", h.Name}, argv...)
}

// cmdTimeout bounds every helper command (ip, nft, conntrack).
const cmdTimeout = 30 * time.Second

// run runs argv with stdin, bounded by ctx and cmdTimeout, and returns its
// combined output.
func run(ctx context.Context, stdin string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != "" {
		c.Stdin = strings.NewReader(stdin)
	}
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
