// Package upnp encodes and decodes the UPnP-IGD messages a port mapping
// client needs (UPnP Device Architecture 1.1; IGD's WANIPConnection and
// WANPPPConnection): the SSDP search and its answer, the device
// description, and SOAP calls and answers. It serves the client in package
// portmap, which keeps them to the gateway and bounds their size, and the
// lab gateway that tests it. Every decoder takes input from anyone on the
// LAN: none may panic, and what comes out stays within bounds (fuzzed).
package upnp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
)

// Group is where SSDP searches go (UDA 1.1, section 1.3.2).
var Group = netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 255, 255, 250}), 1900)

// SearchTargets are what a client searches for: the gateway device, and
// its services, which some gateways answer for and not for the device.
var SearchTargets = []string{
	"urn:schemas-upnp-org:device:InternetGatewayDevice:1",
	"urn:schemas-upnp-org:service:WANIPConnection:1",
	"urn:schemas-upnp-org:service:WANPPPConnection:1",
}

// MSearch is a search for st, to be answered within a second.
func MSearch(st string) []byte {
	return []byte("M-SEARCH * HTTP/1.1\r\n" +
		"HOST: " + Group.String() + "\r\n" +
		"MAN: \"ssdp:discover\"\r\n" +
		"MX: 1\r\n" +
		"ST: " + st + "\r\n\r\n")
}

// ParseSearchAnswer reads the device description's location from an
// answer to a search. Where it leads is the caller's to check.
func ParseSearchAnswer(b []byte) (*url.URL, error) {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
	if err != nil {
		return nil, fmt.Errorf("search answer: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("search answer: status %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, errors.New("search answer without a location")
	}
	u, err := url.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("search answer: location: %w", err)
	}
	return u, nil
}
