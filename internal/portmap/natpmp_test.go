package portmap

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"

	"github.com/p2pconnet/connet/internal/simnet"
)

// TestNATPMPOverNetwork: the mapper speaks NAT-PMP through the network it
// is given, here a simulated LAN whose gateway answers: it maps the port
// at the gateway's external address, skips an answer from another LAN
// host, and deletes the mapping when stopped.
func TestNATPMPOverNetwork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := simnet.New()
		defer n.Close()
		lan := n.NAT("198.51.100.1", simnet.EndpointIndependent, simnet.EndpointIndependent, 0)
		gwHost, client, other := lan.Host("192.168.1.1"), lan.Host("192.168.1.2"), lan.Host("192.168.1.3")
		ctx := context.Background()
		gwConn, err := gwHost.ListenPacket(ctx, "udp", ":5351")
		if err != nil {
			t.Fatal(err)
		}
		liar, err := other.ListenPacket(ctx, "udp", ":5351")
		if err != nil {
			t.Fatal(err)
		}
		defer liar.Close()
		deleted := make(chan bool, 1)
		served := make(chan struct{})
		go func() {
			defer close(served)
			serveNATPMP(gwConn, lan.Public(), liar, deleted)
		}()

		const port = 19192
		m := New(Config{
			Protocols: []Protocol{NATPMP},
			Port:      port,
			Gateway: func(context.Context) (netip.Addr, netip.Addr, error) {
				return gwHost.Addr(), client.Addr(), nil
			},
			Network: client,
		})
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- m.Run(rctx) }()
		mp, changed := m.Mapping()
		for !mp.Valid() {
			<-changed
			mp, changed = m.Mapping()
		}
		if want := netip.AddrPortFrom(lan.Public(), port); mp.Protocol != NATPMP || mp.External != want || mp.Gateway != gwHost.Addr() {
			t.Fatalf("mapping %+v, want %s by nat-pmp at %s", mp, want, gwHost.Addr())
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		select {
		case <-deleted:
		default:
			t.Fatal("the mapping was not deleted at the gateway when the mapper stopped")
		}
		_ = gwConn.Close()
		<-served
	})
}

// serveNATPMP answers NAT-PMP requests on conn, as a gateway whose
// external address is ext, until conn closes; before each answer, liar
// sends the client a mapping of another port, which it must skip. A
// deletion (lifetime 0) is reported on deleted.
func serveNATPMP(conn net.PacketConn, ext netip.Addr, liar net.PacketConn, deleted chan<- bool) {
	buf := make([]byte, 64)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		req := buf[:n]
		var ans []byte
		switch {
		case n == 2 && req[1] == natPMPExternalAddr:
			ans = make([]byte, 12)
			ans[1] = natPMPAnswer + natPMPExternalAddr
			binary.BigEndian.PutUint32(ans[4:8], 100)
			copy(ans[8:12], ext.AsSlice())
		case n == 12 && req[1] == natPMPMapUDP:
			ans = make([]byte, 16)
			ans[1] = natPMPAnswer + natPMPMapUDP
			binary.BigEndian.PutUint32(ans[4:8], 100)
			copy(ans[8:12], req[4:6])  // internal port
			copy(ans[10:12], req[4:6]) // external: the same
			copy(ans[12:16], req[8:12])
			if binary.BigEndian.Uint32(req[8:12]) == 0 {
				select {
				case deleted <- true:
				default:
				}
			}
			lie := append([]byte(nil), ans...)
			binary.BigEndian.PutUint16(lie[10:12], 1)
			_, _ = liar.WriteTo(lie, from)
		default:
			continue
		}
		_, _ = conn.WriteTo(ans, from)
	}
}
