package endpoint

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"time"
)

// Dialer returns how a destination reaches the service its URL names.
// timeout bounds each dial; 0 leaves it to the caller's context and the OS.
func Dialer(u *url.URL, timeout time.Duration) (DialFunc, error) {
	switch u.Scheme {
	case "tcp":
		d := &net.Dialer{Timeout: timeout}
		addr := u.Host
		return func(ctx context.Context, _ netip.AddrPort) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}, nil
	}
	return nil, fmt.Errorf("destination %s: scheme %q is not supported yet", u, u.Scheme)
}
