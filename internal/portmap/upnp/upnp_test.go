package upnp

import (
	"encoding/xml"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// sampleDescription is a home router's description as UPnP-IGD nests it:
// the gateway device, its WAN device, and the connection device with a
// PPP and an IP connection service (listed PPP first).
const sampleDescription = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
 <specVersion><major>1</major><minor>0</minor></specVersion>
 <device>
  <deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
  <friendlyName>home router</friendlyName>
  <serviceList><service>
   <serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>
   <controlURL>/ctl/L3F</controlURL>
  </service></serviceList>
  <deviceList><device>
   <deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
   <deviceList><device>
    <deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
    <serviceList>
     <service>
      <serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType>
      <controlURL>/ctl/PPPConn</controlURL>
     </service>
     <service>
      <serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
      <controlURL>ctl/IPConn</controlURL>
     </service>
    </serviceList>
   </device></deviceList>
  </device></deviceList>
 </device>
</root>`

func TestParseDescription(t *testing.T) {
	loc, _ := url.Parse("http://192.0.2.1:5000/desc/root.xml")
	svcs, err := ParseDescription([]byte(sampleDescription), loc)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range svcs {
		got = append(got, s.Type+" "+s.Control.String())
	}
	want := []string{
		"urn:schemas-upnp-org:service:WANIPConnection:1 http://192.0.2.1:5000/desc/ctl/IPConn",
		"urn:schemas-upnp-org:service:WANPPPConnection:1 http://192.0.2.1:5000/ctl/PPPConn",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("services\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A URLBase replaces the location as the base; where it leads is
	// checked when a request is made, not here.
	withBase := strings.Replace(sampleDescription, "<specVersion>", "<URLBase>http://198.51.100.7:80/</URLBase><specVersion>", 1)
	svcs, err = ParseDescription([]byte(withBase), loc)
	if err != nil {
		t.Fatal(err)
	}
	if got := svcs[0].Control.String(); got != "http://198.51.100.7:80/ctl/IPConn" {
		t.Fatalf("control URL against URLBase: %s", got)
	}

	for name, doc := range map[string]string{
		"no port mapping service": `<root><device><serviceList><service><serviceType>urn:x</serviceType><controlURL>/c</controlURL></service></serviceList></device></root>`,
		"empty control URL":       `<root><device><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL></controlURL></service></serviceList></device></root>`,
		"not XML":                 `HTTP/1.1 200 OK`,
		"truncated":               sampleDescription[:len(sampleDescription)/2],
	} {
		if svcs, err := ParseDescription([]byte(doc), loc); err == nil {
			t.Errorf("%s: services %v, want an error", name, svcs)
		}
	}
}

func TestParseAnswer(t *testing.T) {
	ok := `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>` +
		`<u:GetExternalIPAddressResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">` +
		`<NewExternalIPAddress> 203.0.113.20 </NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>`
	out, err := ParseAnswer([]byte(ok), "GetExternalIPAddress")
	if err != nil || out["NewExternalIPAddress"] != "203.0.113.20" {
		t.Fatalf("%v, %v", out, err)
	}
	if _, err := ParseAnswer([]byte(ok), "AddPortMapping"); err == nil {
		t.Fatal("the answer to another action was taken")
	}
	fault := `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>` +
		`<faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>` +
		`<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode>` +
		`<errorDescription>` + strings.Repeat("Conflict", 100) + `</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`
	_, err = ParseAnswer([]byte(fault), "AddPortMapping")
	var f *Fault
	if !errors.As(err, &f) || f.Code != ConflictInMappingEntry || len(f.Description) > MaxFaultText+3 {
		t.Fatalf("fault: %v", err)
	}
	if _, err := ParseAnswer([]byte("<s:Envelope"), "AddPortMapping"); err == nil {
		t.Fatal("a truncated answer was taken")
	}
}

func TestParseSearchAnswer(t *testing.T) {
	u, err := ParseSearchAnswer([]byte("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nEXT:\r\n" +
		"LOCATION: http://192.0.2.1:5000/rootDesc.xml\r\nST: upnp:rootdevice\r\n\r\n"))
	if err != nil || u.String() != "http://192.0.2.1:5000/rootDesc.xml" {
		t.Fatalf("%v, %v", u, err)
	}
	for _, bad := range []string{
		"HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\n\r\n",
		"HTTP/1.1 404 Not Found\r\nLOCATION: http://192.0.2.1/\r\n\r\n",
		"M-SEARCH * HTTP/1.1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nLOCATION: http://%zz/\r\n\r\n",
	} {
		if u, err := ParseSearchAnswer([]byte(bad)); err == nil {
			t.Errorf("%q: %v, want an error", bad, u)
		}
	}
}

// TestEncodeCall decodes a call as a gateway does: the action with its
// arguments in order, the values escaped.
func TestEncodeCall(t *testing.T) {
	b := EncodeCall(ServiceTypes[1], "AddPortMapping", NewArg("NewExternalPort", "4500"), NewArg("NewPortMappingDescription", "a<b&c"))
	var e Envelope
	if err := xml.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	a := e.Body.Action
	if a.XMLName.Local != "AddPortMapping" || a.XMLName.Space != ServiceTypes[1] || len(a.Args) != 2 ||
		a.Args[0].XMLName.Local != "NewExternalPort" || a.Args[0].Value != "4500" || a.Args[1].Value != "a<b&c" {
		t.Fatalf("decoded %+v from %s", a, b)
	}
}
