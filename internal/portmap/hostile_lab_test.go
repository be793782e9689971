package portmap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/natlab"
)

// The hostile gateway tests run the mapper in a process of its own inside
// the lab client's network namespace (ip netns exec): every socket the
// mapper or a library opens, on any goroutine, is then in the lab, and
// nothing reaches this machine's real gateway. The test binary is that
// process: TestLabChild does the work when labChildEnv carries its orders.
const labChildEnv = "CONNET_PORTMAP_LAB_CHILD"

// labOrder is what the child maps, through which gateway.
type labOrder struct {
	Protocol Protocol
	Gateway  netip.Addr
	Local    netip.Addr
}

// labReport is what the child found.
type labReport struct {
	Port     uint16 // the internal port asked for
	External string // the mapping, if one was made
	Err      string
	// Alloc is the bytes the process allocated during the attempt
	// (runtime.MemStats.TotalAlloc).
	Alloc uint64
}

const labReportPrefix = "LAB-REPORT "

// TestLabChild is the child's side; run alone it skips.
func TestLabChild(t *testing.T) {
	raw := os.Getenv(labChildEnv)
	if raw == "" {
		t.Skip("the child of TestHostileGateway, run inside a lab namespace")
	}
	var o labOrder
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		t.Fatal(err)
	}
	sock, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(o.Local, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	port := uint16(sock.LocalAddr().(*net.UDPAddr).Port)
	m := New(Config{
		Protocols: []Protocol{o.Protocol},
		Port:      port,
		Gateway: func(context.Context) (netip.Addr, netip.Addr, error) {
			return o.Gateway, o.Local, nil
		},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, res, _, _, err := m.establish(ctx)
	runtime.ReadMemStats(&after)
	rep := labReport{Port: port, Alloc: after.TotalAlloc - before.TotalAlloc}
	if err != nil {
		rep.Err = err.Error()
	} else {
		rep.External = res.external.String()
	}
	b, _ := json.Marshal(rep)
	fmt.Println(labReportPrefix + string(b))
}

// runLabChild runs the mapper for proto in h's namespace against gw and
// returns its report.
func runLabChild(t *testing.T, h *natlab.Host, proto Protocol, gw netip.Addr) labReport {
	t.Helper()
	order, _ := json.Marshal(labOrder{Protocol: proto, Gateway: gw, Local: h.Addr})
	cmd := h.Command(os.Args[0], "-test.run=^TestLabChild$", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), labChildEnv+"="+string(order))
	p := h.StartCmd(t, "mapper-"+string(proto), cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("mapper process: %v\n%s", err, p.Output())
	}
	for line := range strings.Lines(p.Output()) {
		if rest, ok := strings.CutPrefix(line, labReportPrefix); ok {
			var rep labReport
			if err := json.Unmarshal([]byte(rest), &rep); err != nil {
				t.Fatal(err)
			}
			t.Logf("mapper (%s): %+v", proto, rep)
			return rep
		}
	}
	t.Fatalf("no report from the mapper process:\n%s", p.Output())
	return labReport{}
}

// spy is an HTTP server that plays a willing UPnP gateway (any
// description, any action succeeds) and counts the requests it gets: a
// client that keeps to the real gateway sends it none.
type spy struct {
	url  string // http://addr:port
	hits atomic.Int64
}

func startSpy(t *testing.T, h *natlab.Host, addr netip.Addr, external netip.Addr) *spy {
	t.Helper()
	ln, err := h.ListenTCP(netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	s := &spy{url: "http://" + ln.Addr().String()}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
		if r.Method == http.MethodGet {
			fmt.Fprint(w, `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<deviceList><device><deviceList><device><serviceList><service>
<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>/ctl</controlURL>
</service></serviceList></device></deviceList></device></deviceList></device></root>`)
			return
		}
		action := r.Header.Get("SOAPAction")
		action = strings.Trim(action[strings.LastIndex(action, "#")+1:], `"`)
		inner := ""
		if action == "GetExternalIPAddress" {
			inner = "<NewExternalIPAddress>" + external.String() + "</NewExternalIPAddress>"
		}
		fmt.Fprintf(w, `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>`+
			`<u:%sResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">%s</u:%sResponse></s:Body></s:Envelope>`, action, inner, action)
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return s
}

// answerSearches makes addr, an address of router's LAN interface that is
// not the gateway's, answer every SSDP search with a description at
// location: a LAN host posing as the gateway.
func answerSearches(t *testing.T, router *natlab.Host, addr netip.Addr, location string) {
	t.Helper()
	var group *net.UDPConn
	err := router.Do(func() error {
		ifi, err := net.InterfaceByName("lan")
		if err != nil {
			return err
		}
		group, err = net.ListenMulticastUDP("udp4", ifi, &net.UDPAddr{IP: net.IPv4(239, 255, 255, 250), Port: 1900})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := router.ListenUDP(netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := group.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(buf[:n])))
			if err != nil || req.Method != "M-SEARCH" {
				continue
			}
			_, _ = reply.WriteToUDPAddrPort([]byte("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nEXT:\r\n"+
				"LOCATION: "+location+"\r\nST: "+req.Header.Get("ST")+"\r\nUSN: uuid:impostor::"+req.Header.Get("ST")+"\r\n\r\n"), from)
		}
	})
	t.Cleanup(func() {
		_ = group.Close()
		_ = reply.Close()
		wg.Wait()
	})
}

// TestHostileGateway runs the mapper against gateways and LAN hosts that
// lie: each answer is refused, no mapping comes out (so none is
// announced), nothing is sent to a host other than the gateway, and a huge
// description costs no more than a small one.
func TestHostileGateway(t *testing.T) {
	natlab.Require(t)
	l := natlab.New(t, natlab.Symmetric)
	router, gw := l.A.NAT.Router, l.A.NAT.Gateway
	// A second address on the router's LAN interface stands for another
	// host of A's LAN (the router's own services listen on gw only).
	impostor := gw.Next().Next()
	if impostor == l.A.Addr {
		t.Fatalf("the impostor's address %s is A's", impostor)
	}
	if out, err := router.Run(context.Background(), "ip", "addr", "add", netip.PrefixFrom(impostor, l.A.NAT.LAN.Bits()).String(), "dev", "lan"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	loopback := netip.MustParseAddr("127.0.0.1")
	public := l.A.PublicAddr
	const maxAlloc = 8 << 20 // what one attempt may allocate, generously

	for _, tc := range []struct {
		name  string
		proto Protocol
		// setup returns the gateway's behavior and the spies that must
		// see no request.
		setup   func(t *testing.T) (natlab.GatewayConfig, []*spy)
		wantErr string
	}{
		{"nat-pmp external port 0", NATPMP, func(*testing.T) (natlab.GatewayConfig, []*spy) {
			return natlab.GatewayConfig{NATPMP: true, Misbehave: natlab.GatewayMisbehavior{ZeroPort: true}}, nil
		}, "port 0"},
		{"pcp external port 0", PCP, func(*testing.T) (natlab.GatewayConfig, []*spy) {
			return natlab.GatewayConfig{PCP: true, Misbehave: natlab.GatewayMisbehavior{ZeroPort: true}}, nil
		}, "port 0"},
		{"nat-pmp external address 127.0.0.1", NATPMP, func(*testing.T) (natlab.GatewayConfig, []*spy) {
			return natlab.GatewayConfig{NATPMP: true, Misbehave: natlab.GatewayMisbehavior{External: loopback}}, nil
		}, "127.0.0.1 is not one peers can reach"},
		{"pcp external address 127.0.0.1", PCP, func(*testing.T) (natlab.GatewayConfig, []*spy) {
			return natlab.GatewayConfig{PCP: true, Misbehave: natlab.GatewayMisbehavior{External: loopback}}, nil
		}, "127.0.0.1 is not one peers can reach"},
		{"upnp external address 127.0.0.1", UPnP, func(*testing.T) (natlab.GatewayConfig, []*spy) {
			return natlab.GatewayConfig{UPnP: true, Misbehave: natlab.GatewayMisbehavior{External: loopback}}, nil
		}, "127.0.0.1 is not one peers can reach"},
		{"upnp search answered by another LAN host", UPnP, func(t *testing.T) (natlab.GatewayConfig, []*spy) {
			s := startSpy(t, router, impostor, public)
			answerSearches(t, router, impostor, s.url+"/rootDesc.xml")
			// The real gateway speaks NAT-PMP only: the impostor's is the
			// only answer to the search.
			return natlab.GatewayConfig{NATPMP: true}, []*spy{s}
		}, "no answer from the gateway"},
		{"upnp description redirected to the client's loopback", UPnP, func(t *testing.T) (natlab.GatewayConfig, []*spy) {
			s := startSpy(t, l.A, loopback, public)
			return natlab.GatewayConfig{UPnP: true, Misbehave: natlab.GatewayMisbehavior{DescriptionRedirect: s.url + "/rootDesc.xml"}}, []*spy{s}
		}, "a redirect (302), not followed"},
		{"upnp control URL on the client's loopback", UPnP, func(t *testing.T) (natlab.GatewayConfig, []*spy) {
			s := startSpy(t, l.A, loopback, public)
			return natlab.GatewayConfig{UPnP: true, Misbehave: natlab.GatewayMisbehavior{ControlURL: s.url + "/ctl"}}, []*spy{s}
		}, "is not on the gateway"},
		{"upnp control URL on another LAN host", UPnP, func(t *testing.T) (natlab.GatewayConfig, []*spy) {
			s := startSpy(t, router, impostor, public)
			return natlab.GatewayConfig{UPnP: true, Misbehave: natlab.GatewayMisbehavior{ControlURL: s.url + "/ctl"}}, []*spy{s}
		}, "is not on the gateway"},
		{"upnp description of 64 MiB", UPnP, func(*testing.T) (natlab.GatewayConfig, []*spy) {
			return natlab.GatewayConfig{UPnP: true, Misbehave: natlab.GatewayMisbehavior{DescriptionPadding: 64 << 20}}, nil
		}, "answer too large"},
		// The same client against a gateway that behaves: the refusals
		// above are the checks', not a client that cannot map at all.
		{"upnp behaves", UPnP, func(*testing.T) (natlab.GatewayConfig, []*spy) {
			return natlab.GatewayConfig{UPnP: true}, nil
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, spies := tc.setup(t)
			g := l.StartGateway(t, l.A, cfg)
			rep := runLabChild(t, l.A, tc.proto, gw)
			internal := netip.AddrPortFrom(l.A.Addr, rep.Port)
			for _, s := range spies {
				if n := s.hits.Load(); n != 0 {
					t.Errorf("%d requests reached %s, which is not the gateway", n, s.url)
				}
			}
			if rep.Alloc > maxAlloc {
				t.Errorf("the attempt allocated %d MiB (at most %d MiB expected)", rep.Alloc>>20, maxAlloc>>20)
			}
			if tc.wantErr == "" {
				if want := netip.AddrPortFrom(public, rep.Port).String(); rep.External != want || rep.Err != "" {
					t.Fatalf("mapping %q (err %q), want %s", rep.External, rep.Err, want)
				}
				g.WaitMapping(t, internal, 5*time.Second)
				return
			}
			if rep.External != "" || !strings.Contains(rep.Err, tc.wantErr) {
				t.Fatalf("mapping %q, error %q; want no mapping and an error with %q", rep.External, rep.Err, tc.wantErr)
			}
			// A refused answer leaves nothing behind on a gateway that
			// listens to the deletion.
			for _, m := range g.Mappings() {
				if m.Internal == internal {
					t.Errorf("the gateway still maps %s -> %s after the answer was refused", m.External, m.Internal)
				}
			}
		})
	}
}
