package portmap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"
)

// Bounds on what a UPnP gateway may send. Routers' descriptions and SOAP
// answers are a few KiB; anything beyond is cut off before it is decoded.
const (
	upnpMaxBody = 64 << 10
	// upnpMaxRead bounds everything read from one connection: the status
	// line and headers, the body with its chunk framing, and slack.
	upnpMaxRead = 3 * upnpMaxBody
	// upnpHTTPTimeout bounds one request, within the attempt's context.
	upnpHTTPTimeout = 2 * time.Second
)

// errNotGateway reports a URL (a description's location, a control URL)
// that points anywhere but at the gateway: another LAN host, the
// client's own loopback, or a name. Nothing is sent there.
var errNotGateway = errors.New("URL not on the gateway")

// errTooLarge reports an answer cut off at upnpMaxBody or upnpMaxRead.
var errTooLarge = fmt.Errorf("answer too large: over %d bytes of body, or %d in all", upnpMaxBody, upnpMaxRead)

// gatewayAddr returns where to connect for target, which must be a plain
// http URL on the gateway's own address (a literal IP: a name would be
// resolved by the system resolver, which the gateway does not control
// alone, and could lead anywhere).
func gatewayAddr(target *url.URL, gw netip.Addr) (netip.AddrPort, error) {
	if target.Scheme != "http" {
		return netip.AddrPort{}, fmt.Errorf("%w: %q is not plain http", errNotGateway, target.Redacted())
	}
	a, err := netip.ParseAddr(target.Hostname())
	if err != nil || a.Unmap() != gw {
		return netip.AddrPort{}, fmt.Errorf("%w: %q is not on the gateway %s", errNotGateway, target.Redacted(), gw)
	}
	port := uint64(80)
	if p := target.Port(); p != "" {
		if port, err = strconv.ParseUint(p, 10, 16); err != nil || port == 0 {
			return netip.AddrPort{}, fmt.Errorf("%w: %q has no valid port", errNotGateway, target.Redacted())
		}
	}
	return netip.AddrPortFrom(gw, uint16(port)), nil
}

// exchange sends one HTTP request to the gateway and returns the answer's
// status and body. It is a client of its own rather than net/http's: one
// connection from the local address facing the gateway, made on the
// caller's goroutine (so it stays in the caller's network namespace), no
// proxy from the environment, no redirect followed (a 3xx is an answer
// like any other, which callers refuse), bounded in time by ctx and
// upnpHTTPTimeout and in size by upnpMaxRead and upnpMaxBody.
func (u *upnpClient) exchange(ctx context.Context, method string, target *url.URL, header http.Header, body []byte) (int, []byte, error) {
	to, err := gatewayAddr(target, u.gw)
	if err != nil {
		return 0, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, upnpHTTPTimeout)
	defer cancel()
	conn, err := u.net.DialContext(ctx, "tcp4", to.String())
	if err != nil {
		return 0, nil, fmt.Errorf("%w", err)
	}
	defer conn.Close()
	// The network picks the source address; it must be the one facing
	// the gateway, which the search and the mapping name.
	if from, ok := conn.LocalAddr().(*net.TCPAddr); !ok || from.AddrPort().Addr().Unmap() != u.local {
		return 0, nil, fmt.Errorf("connection to the gateway %s from %v, not from %s", to, conn.LocalAddr(), u.local)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	req, err := http.NewRequestWithContext(ctx, method, target.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("%w", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Close = true
	if err := req.Write(conn); err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, target.Redacted(), err)
	}
	in := &io.LimitedReader{R: conn, N: upnpMaxRead}
	fail := func(err error) (int, []byte, error) {
		if in.N == 0 {
			err = errTooLarge // what broke is the cut
		}
		return 0, nil, fmt.Errorf("%s %s: %w", method, target.Redacted(), err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(in), req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, upnpMaxBody+1))
	if err != nil {
		return fail(err)
	}
	if len(b) > upnpMaxBody {
		return fail(errTooLarge)
	}
	return resp.StatusCode, b, nil
}
