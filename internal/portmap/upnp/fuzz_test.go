package upnp

import (
	"errors"
	"net/url"
	"testing"
)

// The decoders of what a gateway (or anyone on the LAN) sends: they must
// not panic, and what they return must stay within bounds. The seed corpus
// is in testdata/fuzz.

// FuzzParseDescription decodes arbitrary device descriptions: at most
// MaxServices services come out, each of a known type with a control URL.
func FuzzParseDescription(f *testing.F) {
	f.Add([]byte(sampleDescription))
	loc, _ := url.Parse("http://192.0.2.1:5000/rootDesc.xml")
	f.Fuzz(func(t *testing.T, b []byte) {
		svcs, err := ParseDescription(b, loc)
		if err != nil {
			if len(svcs) != 0 {
				t.Fatalf("services %v beside the error %v", svcs, err)
			}
			return
		}
		if len(svcs) == 0 || len(svcs) > MaxServices {
			t.Fatalf("%d services", len(svcs))
		}
		for _, s := range svcs {
			if s.Control == nil {
				t.Fatalf("service %s without a control URL", s.Type)
			}
		}
	})
}

// FuzzParseAnswer decodes arbitrary SOAP answers: either output
// arguments, or an error; a fault's text stays short.
func FuzzParseAnswer(f *testing.F) {
	f.Add(EncodeCall(ServiceTypes[1], "GetExternalIPAddressResponse", NewArg("NewExternalIPAddress", "203.0.113.20")))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := ParseAnswer(b, "GetExternalIPAddress")
		var fault *Fault
		switch {
		case errors.As(err, &fault):
			if len(fault.Description) > MaxFaultText+3 {
				t.Fatalf("fault text of %d bytes", len(fault.Description))
			}
		case err == nil && out == nil:
			t.Fatal("no arguments and no error")
		}
	})
}

// FuzzParseSearchAnswer decodes arbitrary search answers: a location, or
// an error.
func FuzzParseSearchAnswer(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nLOCATION: http://192.0.2.1:5000/rootDesc.xml\r\nST: upnp:rootdevice\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := ParseSearchAnswer(b)
		if (u == nil) == (err == nil) {
			t.Fatalf("location %v with error %v", u, err)
		}
	})
}
