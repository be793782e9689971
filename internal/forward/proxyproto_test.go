package forward

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/pires/go-proxyproto"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/testcert"
)

// proxyService reads a PROXY header (and, with pki, then speaks TLS),
// reports the header and answers each connection with what followed it.
func proxyService(t *testing.T, pki *testcert.PKI) (addr string, headers <-chan *proxyproto.Header) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	ch := make(chan *proxyproto.Header, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				h, err := proxyproto.Read(br)
				if err != nil {
					t.Errorf("reading PROXY header: %v", err)
					ch <- nil
					return
				}
				ch <- h
				var rw io.ReadWriter = struct {
					io.Reader
					io.Writer
				}{br, c}
				if pki != nil {
					tc := tls.Server(bufferedConn{c, br}, &tls.Config{Certificates: []tls.Certificate{pki.Server.TLS}})
					defer tc.Close()
					rw = tc
				}
				line, err := bufio.NewReader(rw).ReadString('\n')
				if err != nil {
					return
				}
				_, _ = io.WriteString(rw, "after header: "+line)
			}()
		}
	}()
	return ln.Addr().String(), ch
}

// bufferedConn reads through the bufio.Reader that took the PROXY header.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestProxyProtoHeaders(t *testing.T) {
	pki := newTestPKI(t, "pp")
	for _, tc := range []struct {
		name    string
		scheme  string
		version config.ProxyProtoVersion
		origin  netip.AddrPort
	}{
		{"tcp v1", "tcp", config.ProxyProtoV1, testOrigin},
		{"tcp v2", "tcp", config.ProxyProtoV2, testOrigin},
		{"tcp v1 ipv6 origin", "tcp", config.ProxyProtoV1, netip.MustParseAddrPort("[2001:db8::7]:4567")},
		{"tcp v2 mapped ipv4 origin", "tcp", config.ProxyProtoV2, netip.MustParseAddrPort("[::ffff:203.0.113.7]:4567")},
		{"tcp v1 unknown origin", "tcp", config.ProxyProtoV1, netip.AddrPort{}},
		{"tcp v2 unknown origin", "tcp", config.ProxyProtoV2, netip.AddrPort{}},
		{"tls v1", "tls", config.ProxyProtoV1, testOrigin},
		{"tls v2", "tls", config.ProxyProtoV2, testOrigin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var svcPKI *testcert.PKI
			if tc.scheme == "tls" {
				svcPKI = pki
			}
			addr, headers := proxyService(t, svcPKI)
			d := config.DestinationSettings{Name: "pp", URL: mustURL(t, tc.scheme+"://"+addr), ProxyProtoVersion: tc.version, CAsFile: pki.CAFile}
			ft := startDestination(t, d, tc.origin)
			got, err := roundTrip(t, ft, "hello\n")
			if err != nil || got != "after header: hello\n" {
				t.Errorf("stream after the header: %q, %v", got, err)
			}
			h := <-headers
			if h == nil {
				t.FailNow()
			}
			wantVersion := map[config.ProxyProtoVersion]byte{config.ProxyProtoV1: 1, config.ProxyProtoV2: 2}[tc.version]
			if h.Version != wantVersion {
				t.Errorf("version %d, want %d", h.Version, wantVersion)
			}
			if !tc.origin.IsValid() {
				// v1 "PROXY UNKNOWN", v2 LOCAL: no addresses claimed.
				if h.TransportProtocol != proxyproto.UNSPEC || (wantVersion == 2 && h.Command != proxyproto.LOCAL) {
					t.Errorf("unknown origin: got %v command %v", h.TransportProtocol, h.Command)
				}
				return
			}
			src, dst, ok := h.TCPAddrs()
			if !ok {
				t.Fatalf("no TCP addresses in %+v", h)
			}
			if got := src.AddrPort(); netip.AddrPortFrom(got.Addr().Unmap(), got.Port()) != netip.AddrPortFrom(tc.origin.Addr().Unmap(), tc.origin.Port()) {
				t.Errorf("source %v, want the origin %v", src, tc.origin)
			}
			if got := dst.AddrPort(); netip.AddrPortFrom(got.Addr().Unmap(), got.Port()) != netip.MustParseAddrPort(addr) {
				t.Errorf("destination %v, want the service %v", dst, addr)
			}
		})
	}
}
