package connet

import (
	"net"
	"testing"
)

// TestPortMapperOnlyForRealSockets: the gateway is asked only for an
// operating system socket that is not bound to loopback, and never with
// nat-pmp disabled. (Nothing is run here: newPortMapper only decides.)
func TestPortMapperOnlyForRealSockets(t *testing.T) {
	listen := func(addr string) net.PacketConn {
		t.Helper()
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	wildcard := listen(":0")
	for _, tc := range []struct {
		name string
		mode NatPMP
		udp  net.PacketConn
		want bool
	}{
		{"no option (system) on all interfaces", "", wildcard, true},
		{"dial on all interfaces", NatPMPDial, wildcard, true},
		{"one protocol on all interfaces", NatPMPOnlyPCP, wildcard, true},
		{"disabled", NatPMPDisabled, wildcard, false},
		{"loopback socket", NatPMPSystem, listen("127.0.0.1:0"), false},
		{"simulated socket", NatPMPSystem, struct{ net.PacketConn }{wildcard}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []ClientOption{ClientToken("t")}
			if tc.mode != "" {
				opts = append(opts, ClientNatPMP(tc.mode))
			}
			cfg, err := newClientConfig(opts)
			if err != nil {
				t.Fatal(err)
			}
			c := &Client{cfg: cfg, udp: tc.udp}
			if got := c.newPortMapper() != nil; got != tc.want {
				t.Fatalf("port mapper %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := newClientConfig([]ClientOption{ClientToken("t"), ClientNatPMP("igd")}); err == nil {
		t.Fatal("an unknown nat-pmp mode was accepted")
	}
}
