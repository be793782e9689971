package upnp

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
)

// SOAP 1.1 as UPnP uses it (UDA 1.1, section 3.2).
const (
	EnvelopeNS = "http://schemas.xmlsoap.org/soap/envelope/"
	EncodingNS = "http://schemas.xmlsoap.org/soap/encoding/"
)

// Error codes of WANIPConnection (section 2.4.16) that clients act on.
const (
	ConflictInMappingEntry       = 718 // the port is another's
	OnlyPermanentLeasesSupported = 725
)

// Arg is one argument of an action. Arguments go in the order the service
// defines: UPnP services may insist on it.
type Arg struct {
	XMLName xml.Name
	Value   string `xml:",chardata"`
}

// NewArg is the argument name = value.
func NewArg(name, value string) Arg { return Arg{XMLName: xml.Name{Local: name}, Value: value} }

// Action is the element of a call or of its answer: the action's name
// (the answer's is the action's + "Response") with its arguments.
type Action struct {
	XMLName xml.Name
	Args    []Arg `xml:",any"`
}

// Fault is a refusal of an action, with the UPnP error code callers
// branch on.
type Fault struct {
	Code        int
	Description string
}

func (f *Fault) Error() string { return fmt.Sprintf("UPnP error %d %q", f.Code, f.Description) }

// MaxFaultText bounds the description a Fault carries into logs.
const MaxFaultText = 128

// EncodeCall encodes a call of action on serviceType.
func EncodeCall(serviceType, action string, args ...Arg) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0"?>`+"\n"+`<s:Envelope xmlns:s="%s" s:encodingStyle="%s"><s:Body><u:%s xmlns:u="%s">`,
		EnvelopeNS, EncodingNS, action, serviceType)
	for _, a := range args {
		fmt.Fprintf(&b, "<%s>", a.XMLName.Local)
		_ = xml.EscapeText(&b, []byte(a.Value))
		fmt.Fprintf(&b, "</%s>", a.XMLName.Local)
	}
	fmt.Fprintf(&b, "</u:%s></s:Body></s:Envelope>", action)
	return b.Bytes()
}

// Envelope is a SOAP message as UPnP sends them: in the body, an action
// (a call, or an answer), or a fault.
type Envelope struct {
	Body struct {
		Fault *struct {
			Code        int    `xml:"detail>UPnPError>errorCode"`
			Description string `xml:"detail>UPnPError>errorDescription"`
		} `xml:"Fault"`
		Action Action `xml:",any"`
	} `xml:"Body"`
}

// ParseAnswer decodes the answer to action: its output arguments by name,
// or the fault as a *Fault.
func ParseAnswer(b []byte, action string) (map[string]string, error) {
	var e Envelope
	if err := xml.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%s answer: %w", action, err)
	}
	if f := e.Body.Fault; f != nil {
		desc := strings.ToValidUTF8(f.Description, "?")
		if len(desc) > MaxFaultText {
			desc = strings.ToValidUTF8(desc[:MaxFaultText], "") + "..."
		}
		return nil, &Fault{Code: f.Code, Description: desc}
	}
	if got := e.Body.Action.XMLName.Local; got != action+"Response" {
		return nil, fmt.Errorf("%s answered with %.64q", action, got)
	}
	out := make(map[string]string, len(e.Body.Action.Args))
	for _, a := range e.Body.Action.Args {
		out[a.XMLName.Local] = strings.TrimSpace(a.Value)
	}
	return out, nil
}
