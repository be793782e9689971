package connet_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
)

// TestEarlyBytesSurviveARefusal: a client that speaks first, in front of
// two destination peers: the first, which refuses (its service is down),
// is asked without early bytes (another peer could replace it); the last
// gets the client's first bytes with the stream request (DialEarly), once
// and in order, here through the relay with end-to-end encryption.
func TestEarlyBytesSurviveARefusal(t *testing.T) {
	h := newHarness(t, with(connet.ServerRelayIngress(connet.RelayIngress{Addr: "127.0.0.1:0", Hostports: []string{"127.0.0.1:0"}})))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	enc := []connet.RelayEncryption{connet.DHXCPEncryption}

	// The direct destination is tried first and refuses: its service
	// cannot be dialed.
	down := h.connect("token-d")
	d0, err := down.Destination(ctx, connet.NewDestinationConfig("echo").WithRoute(connet.RouteDirect))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = d0.Serve(ctx, func(context.Context, netip.AddrPort) (net.Conn, error) {
			return nil, errors.New("service down")
		})
	}()
	// The relayed one echoes lines.
	up := h.connect("token-d")
	cfg := connet.NewDestinationConfig("echo").WithRoute(connet.RouteRelay)
	cfg.RelayEncryptions = enc
	d1, err := up.Destination(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := d1.AcceptContext(ctx)
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte("echo " + line)); err != nil {
						return
					}
				}
			}()
		}
	}()

	scfg := connet.NewSourceConfig("echo")
	scfg.RelayEncryptions = enc
	sc := h.connect("token-s")
	src, err := sc.Source(ctx, scfg)
	if err != nil {
		t.Fatal(err)
	}
	waitPeers(t, sc, 2)

	client, far := net.Pipe()
	defer far.Close()
	// The client speaks first: the request line is sent before the
	// tunnel exists.
	go func() { _, _ = far.Write([]byte("first\n")) }()
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	conn, err := src.DialEarly(dctx, netip.AddrPort{}, client)
	if err != nil {
		t.Fatalf("DialEarly: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("second\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	for _, want := range []string{"echo first\n", "echo second\n"} {
		got, err := r.ReadString('\n')
		if err != nil || got != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
	st := down.Status()
	if len(st.Destinations) != 1 || st.Destinations[0].LastError == "" {
		t.Fatalf("the refusing destination was not tried: %+v", st.Destinations)
	}
}

// waitPeers waits until cl's first source has a path to n destination
// peers.
func waitPeers(t *testing.T, cl *connet.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ready := 0
		for _, p := range cl.Status().Sources[0].Peers {
			if len(p.Paths) > 0 {
				ready++
			}
		}
		if ready == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("source reaches %d of %d destinations", ready, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
