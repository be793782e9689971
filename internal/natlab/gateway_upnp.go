package natlab

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/p2pconnet/connet/internal/portmap/upnp"
)

// The lab gateway's UPnP-IGD: enough of UPnP Device Architecture 1.1 and
// WANIPConnection:1 for a client to find the service and map a port.
const (
	upnpService   = "urn:schemas-upnp-org:service:WANIPConnection:1"
	upnpDevice    = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
	upnpUUID      = "uuid:6e61746c-6162-4000-8000-000000000001"
	upnpControl   = "/ctl/IPConn"
	upnpDescPath  = "/rootDesc.xml"
	upnpErrorArgs = 402
)

// startUPnP listens for SSDP searches on the LAN interface and serves the
// device description and the control URL over HTTP on the LAN address.
func (g *Gateway) startUPnP() error {
	ln, err := g.router.ListenTCP(netip.AddrPortFrom(g.lan, 0).String())
	if err != nil {
		return err
	}
	g.closers = append(g.closers, ln)
	srv := &http.Server{Handler: http.HandlerFunc(g.serveHTTP), ReadHeaderTimeout: 5 * time.Second}
	g.closers = append(g.closers, srv)
	g.goRun(func() { _ = srv.Serve(ln) })
	location := "http://" + ln.Addr().String() + upnpDescPath

	var ssdp *net.UDPConn
	err = g.router.Do(func() error {
		ifi, err := net.InterfaceByName("lan")
		if err != nil {
			return err
		}
		ssdp, err = net.ListenMulticastUDP("udp4", ifi, net.UDPAddrFromAddrPort(upnp.Group))
		return err
	})
	if err != nil {
		return fmt.Errorf("natlab: gateway ssdp on %s: %w", g.router.Name, err)
	}
	g.closers = append(g.closers, ssdp)
	g.goRun(func() { g.serveSSDP(ssdp, location) })
	return nil
}

// serveSSDP answers M-SEARCH requests for the gateway's device or service
// with a unicast response naming the description's location.
func (g *Gateway) serveSSDP(conn *net.UDPConn, location string) {
	buf := make([]byte, 2048)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(buf[:n])))
		if err != nil || req.Method != "M-SEARCH" || req.Header.Get("MAN") != `"ssdp:discover"` {
			continue
		}
		st := req.Header.Get("ST")
		switch st {
		case upnpService, upnpDevice, "upnp:rootdevice", "ssdp:all":
		default:
			continue
		}
		if st == "ssdp:all" {
			st = upnpService
		}
		resp := "HTTP/1.1 200 OK\r\n" +
			"CACHE-CONTROL: max-age=120\r\n" +
			"EXT:\r\n" +
			"LOCATION: " + location + "\r\n" +
			"SERVER: Linux/natlab UPnP/1.1 natlab-gateway/1\r\n" +
			"ST: " + st + "\r\n" +
			"USN: " + upnpUUID + "::" + st + "\r\n\r\n"
		_, _ = conn.WriteToUDPAddrPort([]byte(resp), from)
	}
}

// rootDesc is the device description: an InternetGatewayDevice holding a
// WANDevice holding a WANConnectionDevice with the WANIPConnection
// service, as the IGD specification nests them.
const rootDesc = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>1</minor></specVersion>
<device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<friendlyName>natlab gateway</friendlyName>
<manufacturer>natlab</manufacturer><modelName>natlab</modelName>
<UDN>` + upnpUUID + `</UDN>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<friendlyName>WAN</friendlyName><manufacturer>natlab</manufacturer><modelName>natlab</modelName>
<UDN>uuid:6e61746c-6162-4000-8000-000000000002</UDN>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<friendlyName>WAN connection</friendlyName><manufacturer>natlab</manufacturer><modelName>natlab</modelName>
<UDN>uuid:6e61746c-6162-4000-8000-000000000003</UDN>
<serviceList><service>
<serviceType>` + upnpService + `</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<SCPDURL>/WANIPCn.xml</SCPDURL>
<controlURL>` + upnpControl + `</controlURL>
<eventSubURL>/evt/IPConn</eventSubURL>
</service></serviceList>
</device></deviceList>
</device></deviceList>
</device>
</root>
`

func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == upnpDescPath && g.cfg.Misbehave.DescriptionRedirect != "":
		http.Redirect(w, r, g.cfg.Misbehave.DescriptionRedirect, http.StatusFound)
	case r.Method == http.MethodGet && r.URL.Path == upnpDescPath:
		w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
		_ = g.writeDescription(w)
	case r.Method == http.MethodPost && r.URL.Path == upnpControl:
		g.serveSOAP(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (g *Gateway) serveSOAP(w http.ResponseWriter, r *http.Request) {
	var req upnp.Envelope
	if err := xml.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		soapFault(w, upnpErrorArgs, "Invalid Args")
		return
	}
	args := map[string]string{}
	for _, a := range req.Body.Action.Args {
		args[a.XMLName.Local] = strings.TrimSpace(a.Value)
	}
	action := req.Body.Action.XMLName.Local
	from, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		soapFault(w, 501, "Action Failed")
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch action {
	case "GetExternalIPAddress":
		soapReply(w, action, "<NewExternalIPAddress>"+g.answeredExternal().String()+"</NewExternalIPAddress>")
	case "AddPortMapping":
		ext, err1 := strconv.ParseUint(args["NewExternalPort"], 10, 16)
		port, err2 := strconv.ParseUint(args["NewInternalPort"], 10, 16)
		client, err3 := netip.ParseAddr(args["NewInternalClient"])
		lease, err4 := strconv.ParseUint(args["NewLeaseDuration"], 10, 32)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || ext == 0 || !strings.EqualFold(args["NewProtocol"], "UDP") {
			soapFault(w, upnpErrorArgs, "Invalid Args")
			return
		}
		// Like miniupnpd's default "secure mode": a client maps ports
		// only to itself.
		if client.Unmap() != from.Addr().Unmap() {
			soapFault(w, 606, "Action not authorized")
			return
		}
		internal := netip.AddrPortFrom(client.Unmap(), uint16(port))
		for _, m := range g.maps {
			if m.External.Port() == uint16(ext) && m.Internal != internal {
				soapFault(w, upnp.ConflictInMappingEntry, "ConflictInMappingEntry")
				return
			}
		}
		life := time.Duration(lease) * time.Second
		if lease == 0 {
			life = g.cfg.MaxLifetime // "permanent", bounded by the lab
		}
		m, err := g.grantLocked("upnp", internal, uint16(ext), life, [12]byte{})
		if err != nil || m.External.Port() != uint16(ext) {
			soapFault(w, upnp.ConflictInMappingEntry, "ConflictInMappingEntry")
			return
		}
		soapReply(w, action, "")
	case "DeletePortMapping":
		ext, err := strconv.ParseUint(args["NewExternalPort"], 10, 16)
		if err != nil {
			soapFault(w, upnpErrorArgs, "Invalid Args")
			return
		}
		for _, m := range g.maps {
			if m.External.Port() == uint16(ext) && m.Protocol == "upnp" {
				if _, err := g.deleteLocked(m.Internal); err != nil {
					g.t.Errorf("natlab: gateway: %v", err)
				}
				soapReply(w, action, "")
				return
			}
		}
		soapFault(w, 714, "NoSuchEntryInArray")
	default:
		soapFault(w, 401, "Invalid Action")
	}
}

func soapReply(w http.ResponseWriter, action, inner string) {
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	fmt.Fprintf(w, `<?xml version="1.0"?>
<s:Envelope xmlns:s="%s" s:encodingStyle="%s"><s:Body><u:%sResponse xmlns:u="%s">%s</u:%sResponse></s:Body></s:Envelope>`,
		upnp.EnvelopeNS, upnp.EncodingNS, action, upnpService, inner, action)
}

func soapFault(w http.ResponseWriter, code int, desc string) {
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0"?>
<s:Envelope xmlns:s="%s" s:encodingStyle="%s"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>%d</errorCode><errorDescription>%s</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`,
		upnp.EnvelopeNS, upnp.EncodingNS, code, desc)
}
