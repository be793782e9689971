package portmap

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	natpmp "github.com/jackpal/go-nat-pmp"
)

// natPMP speaks NAT-PMP through github.com/jackpal/go-nat-pmp, which
// retries on the RFC's schedule within the timeout it is given.
type natPMP struct {
	gw netip.Addr
}

func newNATPMP(gw netip.Addr) *natPMP { return &natPMP{gw: gw} }

// lib returns a library client bounded by ctx's deadline; the library
// takes no context, so a call ends at the deadline rather than at a
// cancellation.
func (n *natPMP) lib(ctx context.Context) *natpmp.Client {
	timeout := requestTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	return natpmp.NewClientWithTimeout(net.IP(n.gw.AsSlice()), timeout)
}

func (n *natPMP) mapPort(ctx context.Context, port, ext uint16, lifetime time.Duration) (result, error) {
	c := n.lib(ctx)
	// The mapping response carries no address: ask for it first.
	addr, err := c.GetExternalAddress()
	if err != nil {
		return result{}, err
	}
	res, err := c.AddPortMapping("udp", int(port), int(ext), int(lifetime/time.Second))
	if err != nil {
		return result{}, err
	}
	// RFC 6886 section 3.3: the answer names the internal port asked for
	// (the library does not check).
	if res.InternalPort != port {
		return result{}, fmt.Errorf("%w: an answer for internal port %d, not %d", errBadAnswer, res.InternalPort, port)
	}
	ip := netip.AddrFrom4(addr.ExternalIPAddress)
	return result{
		external: netip.AddrPortFrom(ip, res.MappedExternalPort),
		lifetime: time.Duration(res.PortMappingLifetimeInSeconds) * time.Second,
		epoch:    res.SecondsSinceStartOfEpoc,
		hasEpoch: true,
	}, nil
}

// unmap deletes the mapping: a request with lifetime 0 and external port 0
// (RFC 6886 section 3.4).
func (n *natPMP) unmap(ctx context.Context, port, _ uint16) error {
	_, err := n.lib(ctx).AddPortMapping("udp", int(port), 0, 0)
	return err
}
