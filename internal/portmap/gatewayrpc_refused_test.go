package portmap

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/network"
)

// TestGatewayRPCRefused: a gateway that does not speak the protocol
// answers with ICMP port unreachable; the request fails with the refusal
// (as go-nat-pmp's and PCP's connected sockets did) rather than resending
// until its time is up, so the next protocol is tried at once.
func TestGatewayRPCRefused(t *testing.T) {
	// A port nobody listens on: bind one, note it, close it.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gw := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	_ = pc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err = gatewayRPC(ctx, network.OS{}, gw, netip.MustParseAddr("127.0.0.1"),
		func(netip.Addr) []byte { return []byte{0, 0} },
		func([]byte) (bool, error) { return true, nil })
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want connection refused", err)
	}
}
