package portmap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/p2pconnet/connet/internal/wire"
)

// errBadAnswer reports a gateway's answer that grants no usable mapping.
var errBadAnswer = errors.New("gateway answer refused")

// checkAnswer refuses a mapping that no gateway can really have granted,
// whatever the protocol: an address and port the control server would
// refuse (wire.CheckAddrPort: port 0 among others; announced, it would end
// the client's session, again at every reconnect), an external address
// that is not a unicast IPv4 address peers could reach (loopback,
// unspecified, multicast, broadcast or link-local: peers would send to
// themselves or nowhere), or a lifetime of 0. Private addresses stay
// allowed: behind a double NAT the gateway's external address is one.
func checkAnswer(res result) error {
	ext := res.external
	if err := wire.CheckAddrPort(ext); err != nil {
		return fmt.Errorf("%w: external address %s: %w", errBadAnswer, ext, err)
	}
	ip := ext.Addr()
	switch {
	case !ip.Is4():
		return fmt.Errorf("%w: external address %s is not IPv4", errBadAnswer, ip)
	case ip.IsLoopback(), ip.IsUnspecified(), ip.IsMulticast(), ip.IsLinkLocalUnicast(), ip == broadcast4:
		return fmt.Errorf("%w: external address %s is not one peers can reach", errBadAnswer, ip)
	case res.lifetime <= 0:
		return fmt.Errorf("%w: lifetime %v", errBadAnswer, res.lifetime)
	}
	return nil
}

// broadcast4 is the limited broadcast address, 255.255.255.255.
var broadcast4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// mapChecked asks c for the mapping of port (suggesting ext) and checks
// the answer. An answer refused comes back beside its error (wrapping
// errBadAnswer), since it may still have made a mapping on the gateway
// that the caller then deletes.
func mapChecked(ctx context.Context, c client, port, ext uint16) (result, error) {
	res, err := c.mapPort(ctx, port, ext, requestLifetime)
	if err != nil {
		return result{}, err
	}
	return res, checkAnswer(res)
}
