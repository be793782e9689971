package upnp

import (
	"encoding/xml"
	"errors"
	"fmt"
	"github.com/p2pconnet/connet/internal/logs"
	"net/url"
	"slices"
)

// ServiceTypes are the services that map ports, best first: both
// versions of WANIPConnection, then WANPPPConnection (DSL routers that
// dial PPP offer only that one). They share the actions a client needs.
var ServiceTypes = []string{
	"urn:schemas-upnp-org:service:WANIPConnection:2",
	"urn:schemas-upnp-org:service:WANIPConnection:1",
	"urn:schemas-upnp-org:service:WANPPPConnection:1",
}

// Service is a port mapping service of a device and its control URL.
type Service struct {
	Type    string
	Control *url.URL
}

// MaxServices bounds the services ParseDescription returns: a router has
// one or two.
const MaxServices = 4

// description is the part of a device description (UDA 1.1, section 2.3)
// that leads to the services: devices nest in deviceList, each with its
// serviceList.
type description struct {
	URLBase string `xml:"URLBase"`
	Device  device `xml:"device"`
}

type device struct {
	Services []service `xml:"serviceList>service"`
	Devices  []device  `xml:"deviceList>device"`
}

type service struct {
	ServiceType string `xml:"serviceType"`
	ControlURL  string `xml:"controlURL"`
}

// ParseDescription decodes a device description and returns its port
// mapping services, best first, with their control URLs resolved against
// the URLBase it names, else against loc, where it was fetched. Where the
// URLs lead is the caller's to check.
func ParseDescription(b []byte, loc *url.URL) ([]Service, error) {
	var d description
	if err := xml.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("device description: %w", err)
	}
	base := loc
	if d.URLBase != "" {
		u, err := loc.Parse(d.URLBase)
		if err != nil {
			return nil, fmt.Errorf("device description: URLBase: %w", err)
		}
		base = u
	}
	var found []Service
	var errs []error
	// Depth first, with a stack of our own: the XML decoder bounds the
	// nesting, and this walk needs no recursion of its own.
	stack := []*device{&d.Device}
	for len(stack) > 0 && len(found) < MaxServices {
		dev := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for i := range dev.Devices {
			stack = append(stack, &dev.Devices[i])
		}
		for _, s := range dev.Services {
			if !slices.Contains(ServiceTypes, s.ServiceType) || len(found) == MaxServices {
				continue
			}
			control, err := base.Parse(s.ControlURL)
			if err != nil || s.ControlURL == "" {
				errs = append(errs, fmt.Errorf("%s: control URL %.64q: %v", s.ServiceType, s.ControlURL, err))
				continue
			}
			found = append(found, Service{Type: s.ServiceType, Control: control})
		}
	}
	if len(found) == 0 {
		if len(errs) > 0 {
			return nil, fmt.Errorf("the device description lists no usable port mapping service: %w", logs.Join(errs...))
		}
		return nil, errors.New("the device description lists no port mapping service")
	}
	slices.SortStableFunc(found, func(a, b Service) int {
		return slices.Index(ServiceTypes, a.Type) - slices.Index(ServiceTypes, b.Type)
	})
	return found, nil
}
