package direct

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/simnet"
)

// TestNewCandidatesCutADialShort: while a dial waits on a candidate that
// never answers (a long handshake timeout), the peer gains a candidate (a
// port mapping it just made): the node dials it at once rather than after
// the handshake times out.
func TestNewCandidatesCutADialShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := simnet.New()
		n.SetLatency(simLatency)
		defer n.Close()
		rv, _ := n.Host("203.0.113.1").ListenPacket(context.Background(), "udp", ":3478")
		defer rv.Close()
		c := newSimClient(t, n.Host("203.0.113.2"), rv, time.Minute)

		blackhole := n.Host("203.0.113.3")
		sink, _ := blackhole.ListenPacket(context.Background(), "udp", ":1000")
		mapped, _ := blackhole.ListenPacket(context.Background(), "udp", ":2000")
		attempts, attempts2 := dialAttempts(sink), dialAttempts(mapped)
		other := newIdentity(t)
		info := peer.Info{ID: other.ID, Cert: other.DER(), Candidates: []netip.AddrPort{sink.LocalAddr().(*net.UDPAddr).AddrPort()}}
		c.reg.Apply([]peer.Info{info})
		<-attempts // the dial is under way, for up to a minute

		time.Sleep(time.Second)
		more := info
		more.Candidates = append([]netip.AddrPort{mapped.LocalAddr().(*net.UDPAddr).AddrPort()}, info.Candidates...)
		changedAt := time.Now()
		c.reg.Apply([]peer.Info{more})
		select {
		case at := <-attempts2:
			if d := at.Sub(changedAt); d > time.Second {
				t.Fatalf("dialed the new candidate %v after it appeared", d)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the new candidate was not dialed while the old dial was waiting")
		}
		c.reg.Close()
		_ = sink.Close()
		_ = mapped.Close()
		for range attempts {
		}
		for range attempts2 {
		}
	})
}
