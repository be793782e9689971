package portmap

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"time"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
	"github.com/huin/goupnp/httpu"
	"github.com/huin/goupnp/soap"
	"github.com/huin/goupnp/ssdp"
)

// upnpSearch is how long the SSDP search waits for answers; SSDP's MX is
// in whole seconds, at least one.
const upnpSearch = 1500 * time.Millisecond

// upnpTimeout bounds a UPnP attempt: the search, the device description
// and the SOAP calls.
const upnpTimeout = upnpSearch + 3*time.Second

// upnpDescription names the mapping in the gateway's table.
const upnpDescription = "connet"

// upnpClient speaks UPnP-IGD's WANIPConnection:1 through
// github.com/huin/goupnp. The search goes out only from the address that
// faces the gateway, and an answer from the gateway itself is preferred.
type upnpClient struct {
	gw, local netip.Addr
	svc       *internetgateway2.WANIPConnection1
}

func newUPnP(gw, local netip.Addr) *upnpClient { return &upnpClient{gw: gw, local: local} }

// discover finds the gateway's WANIPConnection service, once per client.
func (u *upnpClient) discover(ctx context.Context) error {
	if u.svc != nil {
		return nil
	}
	if !u.local.IsValid() {
		return errors.New("upnp: no local address")
	}
	hc, err := httpu.NewHTTPUClientAddr(u.local.String())
	if err != nil {
		return fmt.Errorf("upnp: %w", err)
	}
	defer hc.Close()
	sctx, cancel := context.WithTimeout(ctx, upnpSearch)
	defer cancel()
	resps, err := ssdp.RawSearch(sctx, hc, internetgateway2.URN_WANIPConnection_1, 2)
	if err != nil {
		return fmt.Errorf("upnp: search: %w", err)
	}
	var locs []*url.URL
	for _, r := range resps {
		loc, err := r.Location()
		if err != nil {
			continue
		}
		if a, err := netip.ParseAddr(loc.Hostname()); err == nil && a == u.gw {
			locs = append([]*url.URL{loc}, locs...)
		} else {
			locs = append(locs, loc)
		}
	}
	if len(locs) == 0 {
		return errors.New("upnp: no internet gateway device answered")
	}
	var errs []error
	for _, loc := range locs {
		root, err := goupnp.DeviceByURLCtx(ctx, loc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		svcs, err := internetgateway2.NewWANIPConnection1ClientsFromRootDevice(root, loc)
		if err != nil || len(svcs) == 0 {
			errs = append(errs, fmt.Errorf("%s: no WANIPConnection: %w", loc, err))
			continue
		}
		u.svc = svcs[0]
		return nil
	}
	return fmt.Errorf("upnp: %w", errors.Join(errs...))
}

func (u *upnpClient) mapPort(ctx context.Context, port, ext uint16, lifetime time.Duration) (result, error) {
	if err := u.discover(ctx); err != nil {
		return result{}, err
	}
	extIP, err := u.svc.GetExternalIPAddressCtx(ctx)
	if err != nil {
		return result{}, fmt.Errorf("upnp: external address: %w", err)
	}
	ip, err := netip.ParseAddr(extIP)
	if err != nil {
		return result{}, fmt.Errorf("upnp: external address %q: %w", extIP, err)
	}
	if ext == 0 {
		ext = port
	}
	lease := uint32(lifetime / time.Second)
	// A port taken by another host's mapping is refused (718
	// ConflictInMappingEntry): try a few random ones.
	for try := 0; ; try++ {
		err = u.svc.AddPortMappingCtx(ctx, "", ext, "UDP", port, u.local.String(), true, upnpDescription, lease)
		var se *soap.SOAPFaultError
		if err == nil || try == 3 || !errors.As(err, &se) {
			break
		}
		if lease != 0 && se.Detail.UPnPError.Errorcode == 725 { // OnlyPermanentLeasesSupported
			lease = 0
			continue
		}
		ext = uint16(1024 + rand.IntN(65535-1024))
	}
	if err != nil {
		return result{}, fmt.Errorf("upnp: add port mapping: %w", err)
	}
	life := time.Duration(lease) * time.Second
	if lease == 0 {
		// A permanent mapping: renew now and then all the same, in case
		// the gateway restarts and forgets it.
		life = 2 * maxRenew
	}
	return result{external: netip.AddrPortFrom(ip, ext), lifetime: life}, nil
}

func (u *upnpClient) unmap(ctx context.Context, _, ext uint16) error {
	if u.svc == nil {
		return nil
	}
	return u.svc.DeletePortMappingCtx(ctx, "", ext, "UDP")
}
