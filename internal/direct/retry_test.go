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

// dialAttempts records, on the bubble's clock, when each new QUIC
// connection attempt reaches pc: a long-header packet with a destination
// connection ID not seen before (retransmissions reuse theirs).
func dialAttempts(pc net.PacketConn) <-chan time.Time {
	out := make(chan time.Time, 128)
	go func() {
		seen := map[string]bool{}
		buf := make([]byte, 2048)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				close(out)
				return
			}
			// Long header: flags, version (4), DCID length, DCID.
			if n < 6 || buf[0]&0x80 == 0 || n < 6+int(buf[5]) {
				continue
			}
			dcid := string(buf[6 : 6+int(buf[5])])
			if !seen[dcid] {
				seen[dcid] = true
				out <- time.Now()
			}
		}
	}()
	return out
}

// TestRetryBackoffVirtualTime: a node whose peer never answers redials
// with growing, bounded delays (each attempt waits out the 2 s handshake,
// then the backoff), and a change of the peer's candidates cuts the wait
// short. Ten simulated minutes of retries run in milliseconds.
func TestRetryBackoffVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := simnet.New()
		n.SetLatency(simLatency)
		defer n.Close()
		rv, _ := n.Host("203.0.113.1").ListenPacket(context.Background(), "udp", ":3478")
		defer rv.Close()
		c := newSimClient(t, n.Host("203.0.113.2"), rv, 2*time.Second)

		// The peer's only candidate is a socket that reads and never
		// answers, so every attempt times out and is counted.
		blackhole := n.Host("203.0.113.3")
		sink, _ := blackhole.ListenPacket(context.Background(), "udp", ":1000")
		attempts := dialAttempts(sink)
		other := newIdentity(t)
		info := peer.Info{ID: other.ID, Cert: other.DER(), Candidates: []netip.AddrPort{sink.LocalAddr().(*net.UDPAddr).AddrPort()}}
		c.reg.Apply([]peer.Info{info})

		const window = 10 * time.Minute
		end := time.Now().Add(window)
		var times []time.Time
		for {
			select {
			case at := <-attempts:
				times = append(times, at)
				continue
			case <-time.After(time.Until(end)):
			}
			break
		}
		if len(times) < 8 {
			t.Fatalf("%d attempts in %v: retrying too slowly", len(times), window)
		}
		// Back to back (no backoff) would be one attempt per 2 s handshake
		// timeout, 300 in the window; growth to retryMax keeps it far below.
		if len(times) > 40 {
			t.Fatalf("%d attempts in %v: backoff not growing", len(times), window)
		}
		var gaps []time.Duration
		for i := 1; i < len(times); i++ {
			gaps = append(gaps, times[i].Sub(times[i-1]))
		}
		if first := gaps[0]; first > 2*time.Second+retryMin+simLatency {
			t.Errorf("first retry after %v, want within handshake + retryMin", first)
		}
		last := gaps[len(gaps)-1]
		if last < 2*time.Second+retryMax/2 || last > 2*time.Second+retryMax+simLatency {
			t.Errorf("late retry gap %v, want handshake + [retryMax/2, retryMax]", last)
		}
		for _, g := range gaps {
			if g > 2*time.Second+retryMax+simLatency {
				t.Errorf("gap %v beyond retryMax", g)
			}
		}
		t.Logf("%d attempts over %v (simulated); gaps %v", len(times), window, gaps)

		// New candidates (the peer moved): the node dials at once instead
		// of sleeping out the backoff. Wait until an attempt just timed
		// out, so the node is in its longest wait.
		sink2, _ := blackhole.ListenPacket(context.Background(), "udp", ":2000")
		attempts2 := dialAttempts(sink2)
		time.Sleep(3 * time.Second)
		moved := info
		moved.Candidates = []netip.AddrPort{sink2.LocalAddr().(*net.UDPAddr).AddrPort()}
		changedAt := time.Now()
		c.reg.Apply([]peer.Info{moved})
		select {
		case at := <-attempts2:
			if d := at.Sub(changedAt); d > time.Second {
				t.Fatalf("redialed %v after the candidates changed", d)
			}
		case <-time.After(time.Minute):
			t.Fatal("no dial to the new candidate")
		}
		c.reg.Close()
		_ = sink.Close()
		_ = sink2.Close()
		for range attempts {
		}
		for range attempts2 {
		}
	})
}
