package natlab

import (
	"io"
	"net/netip"
	"strings"
)

// GatewayMisbehavior makes the lab gateway answer as a broken or hostile
// one would, for tests of the checks clients make on its answers. The zero
// value behaves. The forwarding rules stay the real ones: only the answers
// lie.
type GatewayMisbehavior struct {
	// ZeroPort grants NAT-PMP and PCP mappings with external port 0.
	ZeroPort bool
	// External replaces the WAN address in every answer that names the
	// external address (NAT-PMP, PCP and UPnP's GetExternalIPAddress), for
	// example with 127.0.0.1.
	External netip.Addr
	// DescriptionRedirect answers a GET of the UPnP device description
	// with a 302 to this URL.
	DescriptionRedirect string
	// ControlURL is the control URL the UPnP description names instead of
	// the gateway's own (another host, or the client's loopback).
	ControlURL string
	// DescriptionPadding pads the UPnP description's friendlyName with
	// this many bytes, streamed (a description of 64 MiB does not cost
	// the gateway 64 MiB).
	DescriptionPadding int
}

// answeredExternal is the external address the gateway's answers name.
func (g *Gateway) answeredExternal() netip.Addr {
	if g.cfg.Misbehave.External.IsValid() {
		return g.cfg.Misbehave.External
	}
	return g.wan
}

// answeredPort is the external port the gateway's NAT-PMP and PCP answers
// name for m.
func (g *Gateway) answeredPort(m *GatewayMapping) uint16 {
	if g.cfg.Misbehave.ZeroPort {
		return 0
	}
	return m.External.Port()
}

// writeDescription writes the device description, with the control URL
// and padding the misbehavior asks for.
func (g *Gateway) writeDescription(w io.Writer) error {
	control := upnpControl
	if g.cfg.Misbehave.ControlURL != "" {
		control = g.cfg.Misbehave.ControlURL
	}
	desc := strings.Replace(rootDesc, "<controlURL>"+upnpControl+"<", "<controlURL>"+control+"<", 1)
	head, tail, _ := strings.Cut(desc, "</friendlyName>")
	if _, err := io.WriteString(w, head); err != nil {
		return err
	}
	chunk := []byte(strings.Repeat("x", 64<<10))
	for left := g.cfg.Misbehave.DescriptionPadding; left > 0; left -= len(chunk) {
		if _, err := w.Write(chunk[:min(left, len(chunk))]); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "</friendlyName>"+tail)
	return err
}
