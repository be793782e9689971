package portmap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/network"
	"github.com/p2pconnet/connet/internal/portmap/upnp"
)

// upnpSearch is how long the SSDP search waits for the gateway's answer;
// SSDP's MX is in whole seconds, at least one.
const upnpSearch = 1500 * time.Millisecond

// upnpTimeout bounds a UPnP attempt: the search, the device description
// and the SOAP calls.
const upnpTimeout = upnpSearch + 3*time.Second

// upnpDescription names the mapping in the gateway's table.
const upnpDescription = "connet"

// upnpClient speaks UPnP-IGD to the gateway, and to nothing else: the
// search takes only the gateway's own answer (upnp_ssdp.go), and the
// description and every control URL must be on the gateway's address
// (exchange, in upnp_http.go, checks each request). It is our own, small
// and bounded, since a LAN host or a broken router must not steer it
// elsewhere or make it allocate without bound; package upnp holds the
// message formats.
type upnpClient struct {
	net       network.Network
	gw, local netip.Addr
	// svc is the gateway's service that answered, once found.
	svc *upnp.Service
}

func newUPnP(n network.Network, gw, local netip.Addr) *upnpClient {
	return &upnpClient{net: n, gw: gw, local: local}
}

// discover finds the gateway's port mapping services, best first.
func (u *upnpClient) discover(ctx context.Context) ([]upnp.Service, error) {
	if !u.local.IsValid() {
		return nil, errors.New("no local address")
	}
	loc, err := u.search(ctx)
	if err != nil {
		return nil, err
	}
	return u.description(ctx, loc)
}

// description fetches the device description at loc from the gateway and
// returns its port mapping services. A redirect is refused, not followed:
// the description is where the gateway said it is, or nowhere.
func (u *upnpClient) description(ctx context.Context, loc *url.URL) ([]upnp.Service, error) {
	status, body, err := u.exchange(ctx, http.MethodGet, loc, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("device description: %w", err)
	}
	if status/100 == 3 {
		return nil, fmt.Errorf("device description %s: a redirect (%d), not followed", loc.Redacted(), status)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("device description %s: status %d", loc.Redacted(), status)
	}
	return upnp.ParseDescription(bytes.TrimSpace(body), loc)
}

// call runs action on the gateway's service s.
func (u *upnpClient) call(ctx context.Context, s upnp.Service, action string, args ...upnp.Arg) (map[string]string, error) {
	header := http.Header{
		"Content-Type": {`text/xml; charset="utf-8"`},
		// Spelled as the specification does: some gateways compare
		// header names case-sensitively.
		"SOAPAction": {`"` + s.Type + "#" + action + `"`},
	}
	status, body, err := u.exchange(ctx, http.MethodPost, s.Control, header, upnp.EncodeCall(s.Type, action, args...))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", action, err)
	}
	// A fault comes with status 500; a 3xx is not followed.
	if status != http.StatusOK && status != http.StatusInternalServerError {
		return nil, fmt.Errorf("%s: status %d", action, status)
	}
	out, err := upnp.ParseAnswer(body, action)
	if err == nil && status != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d", action, status)
	}
	return out, err
}

// externalAddr asks the gateway its external address. The first time, it
// finds the service: the first of the description's that answers.
func (u *upnpClient) externalAddr(ctx context.Context) (netip.Addr, error) {
	if u.svc != nil {
		return u.getExternal(ctx, *u.svc)
	}
	svcs, err := u.discover(ctx)
	if err != nil {
		return netip.Addr{}, err
	}
	var errs []error
	for _, s := range svcs {
		ip, err := u.getExternal(ctx, s)
		if err == nil {
			u.svc = &s
			return ip, nil
		}
		if ctx.Err() != nil {
			return netip.Addr{}, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", s.Type, err))
	}
	return netip.Addr{}, logs.Join(errs...)
}

func (u *upnpClient) getExternal(ctx context.Context, s upnp.Service) (netip.Addr, error) {
	out, err := u.call(ctx, s, "GetExternalIPAddress")
	if err != nil {
		return netip.Addr{}, err
	}
	ip, err := netip.ParseAddr(out["NewExternalIPAddress"])
	if err != nil {
		return netip.Addr{}, fmt.Errorf("external address %.64q: %w", out["NewExternalIPAddress"], err)
	}
	return ip.Unmap(), nil
}

func (u *upnpClient) mapPort(ctx context.Context, port, ext uint16, lifetime time.Duration) (result, error) {
	ip, err := u.externalAddr(ctx)
	if err != nil {
		return result{}, err
	}
	if ext == 0 {
		ext = port
	}
	lease := uint32(lifetime / time.Second)
	// A port taken by another host's mapping is refused (718
	// ConflictInMappingEntry): try a few random ones.
	for try := 0; ; try++ {
		_, err = u.call(ctx, *u.svc, "AddPortMapping",
			upnp.NewArg("NewRemoteHost", ""),
			upnp.NewArg("NewExternalPort", strconv.Itoa(int(ext))),
			upnp.NewArg("NewProtocol", "UDP"),
			upnp.NewArg("NewInternalPort", strconv.Itoa(int(port))),
			upnp.NewArg("NewInternalClient", u.local.String()),
			upnp.NewArg("NewEnabled", "1"),
			upnp.NewArg("NewPortMappingDescription", upnpDescription),
			upnp.NewArg("NewLeaseDuration", strconv.FormatUint(uint64(lease), 10)),
		)
		var f *upnp.Fault
		if err == nil || try == 3 || !errors.As(err, &f) {
			break
		}
		if lease != 0 && f.Code == upnp.OnlyPermanentLeasesSupported {
			lease = 0
			continue
		}
		ext = uint16(1024 + rand.IntN(65535-1024))
	}
	if err != nil {
		return result{}, fmt.Errorf("add port mapping: %w", err)
	}
	life := time.Duration(lease) * time.Second
	if lease == 0 {
		// A permanent mapping: renew now and then all the same, in case
		// the gateway restarts and forgets it.
		life = 2 * maxRenew
	}
	// The answer carries no port: the mapping is the one asked for.
	return result{external: netip.AddrPortFrom(ip, ext), lifetime: life}, nil
}

func (u *upnpClient) unmap(ctx context.Context, _, ext uint16) error {
	if u.svc == nil {
		return nil
	}
	_, err := u.call(ctx, *u.svc, "DeletePortMapping",
		upnp.NewArg("NewRemoteHost", ""),
		upnp.NewArg("NewExternalPort", strconv.Itoa(int(ext))),
		upnp.NewArg("NewProtocol", "UDP"),
	)
	return err
}
