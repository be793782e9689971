package portmap

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/p2pconnet/connet/internal/network"
)

func TestGatewayAddr(t *testing.T) {
	gw := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		url  string
		want string // "" for refused
	}{
		{"http://192.0.2.1:49152/ctl", "192.0.2.1:49152"},
		{"http://192.0.2.1/ctl", "192.0.2.1:80"},
		{"http://[::ffff:192.0.2.1]:5000/ctl", "192.0.2.1:5000"},
		{"http://127.0.0.1:49152/ctl", ""},
		{"http://192.0.2.3:49152/ctl", ""},
		{"http://router.lan:49152/ctl", ""},
		{"https://192.0.2.1:49152/ctl", ""},
		{"file:///etc/passwd", ""},
		{"http://192.0.2.1:0/ctl", ""},
		{"http://192.0.2.1:99999/ctl", ""},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		ap, err := gatewayAddr(u, gw)
		switch {
		case tc.want == "" && !errors.Is(err, errNotGateway):
			t.Errorf("%s: %v, %v; want refused", tc.url, ap, err)
		case tc.want != "" && (err != nil || ap.String() != tc.want):
			t.Errorf("%s: %v, %v; want %s", tc.url, ap, err, tc.want)
		}
	}
}

// TestExchangeBounds serves answers that never end, or end in a redirect,
// from a stand-in gateway on loopback: each is cut off or refused, and
// reading one costs little memory.
func TestExchangeBounds(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		cancel()
		_ = ln.Close()
		wg.Wait()
	}()
	// Each connection gets the next answer: a head, then filler repeated
	// until the client hangs up (or ctx ends).
	answers := make(chan [2]string, 1)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a := <-answers
			wg.Go(func() {
				defer c.Close()
				stop := context.AfterFunc(ctx, func() { _ = c.Close() })
				defer stop()
				buf := make([]byte, 4096)
				_, _ = c.Read(buf) // the request
				if _, err := c.Write([]byte(a[0])); err != nil || a[1] == "" {
					return
				}
				filler := []byte(strings.Repeat(a[1], 16<<10/len(a[1])))
				for range 64 << 20 / len(filler) {
					if _, err := c.Write(filler); err != nil {
						return
					}
				}
			})
		}
	})
	u := newUPnP(network.OS{}, lo, lo)
	target, _ := url.Parse("http://" + ln.Addr().String() + "/rootDesc.xml")
	for _, tc := range []struct {
		name, head, filler string
		wantStatus         int
	}{
		{"endless body", "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n<root>", "<friendlyName>x</friendlyName>", 0},
		{"endless chunked body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "10\r\nxxxxxxxxxxxxxxxx\r\n", 0},
		{"endless header", "HTTP/1.1 200 OK\r\nX-Filler: ", "a", 0},
		{"endless headers", "HTTP/1.1 200 OK\r\n", "X-Filler: a\r\n", 0},
		{"redirect", "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:1/\r\nContent-Length: 0\r\n\r\n", "", http.StatusFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answers <- [2]string{tc.head, tc.filler}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			status, body, err := u.exchange(ctx, http.MethodGet, target, nil, nil)
			runtime.ReadMemStats(&after)
			if tc.wantStatus != 0 {
				if err != nil || status != tc.wantStatus || len(body) != 0 {
					t.Fatalf("status %d, %d bytes, %v; want %d", status, len(body), err, tc.wantStatus)
				}
				return
			}
			if !errors.Is(err, errTooLarge) {
				t.Fatalf("status %d with %d bytes, error %v: want the answer cut off as too large", status, len(body), err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
				t.Fatalf("reading it allocated %d KiB", alloc>>10)
			}
		})
	}
}
