package portmap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"time"

	"github.com/p2pconnet/connet/internal/portmap/upnp"
)

// ssdpMaxPacket bounds an SSDP answer read; a longer one is cut and fails
// to parse.
const ssdpMaxPacket = 2048

// search multicasts the searches from the local address facing the
// gateway and returns the description's location from the first answer
// the gateway itself sends, waiting at most upnpSearch. Answers from any
// other address are ignored: on a LAN, anyone can answer.
func (u *upnpClient) search(ctx context.Context) (*url.URL, error) {
	conn, err := u.net.ListenPacket(ctx, "udp4", netip.AddrPortFrom(u.local, 0).String())
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, upnpSearch)
	defer cancel()
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	// Each search twice: SSDP runs over UDP, and a LAN may lose one.
	for range 2 {
		for _, st := range upnp.SearchTargets {
			if _, err := conn.WriteTo(upnp.MSearch(st), net.UDPAddrFromAddrPort(upnp.Group)); err != nil {
				return nil, fmt.Errorf("search: %w", err)
			}
		}
	}
	buf := make([]byte, ssdpMaxPacket)
	ignored := 0
	var bad error
	for {
		n, addr, err := conn.ReadFrom(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break // the deadline, or the attempt's end
		}
		if err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		if from, ok := addr.(*net.UDPAddr); !ok || from.AddrPort().Addr().Unmap() != u.gw {
			ignored++
			continue
		}
		loc, err := upnp.ParseSearchAnswer(buf[:n])
		if err != nil {
			bad = err
			continue
		}
		return loc, nil
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, err // the attempt was cancelled
	}
	if bad != nil {
		return nil, bad
	}
	return nil, fmt.Errorf("no answer from the gateway %s to the search (%d from other hosts ignored)", u.gw, ignored)
}
