package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
)

// benchDuration is how long each measurement sends.
const benchDuration = 3 * time.Second

// Sources of the endpoints forced through the relay, in the clear and
// end-to-end encrypted.
const (
	relayedSourcePort = "8001"
	sealedSourcePort  = "8002"
	tlsSourcePort     = "8003"
)

// parallelStreams is how many connections the parallel figure opens at
// once through the direct path, each one stream on the one connection.
const parallelStreams = 8

// TestThroughput measures bulk TCP throughput through the tunnel, over raw
// TCP and over one bare QUIC connection (bench/quicceiling, the most the
// tunnel's QUIC could carry) between the same namespaces in the same run,
// and prints each tunnel figure as a ratio to both. It asserts only that the data arrived; speed is reported, not
// judged. Set CONNET_BENCH=1 to run it (scripts/bench.sh does).
func TestThroughput(t *testing.T) {
	if os.Getenv("CONNET_BENCH") == "" {
		t.Skip("set CONNET_BENCH=1 to measure throughput")
	}
	bin := ceilingBin(t)
	for _, topo := range []natlab.Topology{natlab.Public, natlab.Cone} {
		t.Run(topo.String(), func(t *testing.T) {
			d := newBenchDeployment(t, topo)
			// The sink listens on A's lab address, so the raw reference
			// uses the same namespaces and links as the tunnel.
			sinkAddr := net.JoinHostPort(d.lab.A.Addr.String(), servicePort)
			serveSink(t, d.lab.A, sinkAddr)
			d.startServer()
			// One endpoint may go direct, a second is forced through the
			// server's relay; both reach the same sink.
			d.write("destination.toml", d.clientConfig("token-a", fmt.Sprintf(`
[client.destinations.web]
url = "tcp://%[1]s"
[client.destinations.relayed]
url = "tcp://%[1]s"
route = "relay"
[client.destinations.sealed]
url = "tcp://%[1]s"
route = "relay"
relay-encryptions = ["dhxcp"]
[client.destinations.sealedtls]
url = "tcp://%[1]s"
route = "relay"
relay-encryptions = ["tls"]
`, sinkAddr)))
			d.startClient(d.lab.A, "destination", d.path("destination.toml"))
			d.write("source.toml", d.clientConfig("token-b", fmt.Sprintf(`
[client.sources.web]
url = "tcp://127.0.0.1:%s"
[client.sources.relayed]
url = "tcp://127.0.0.1:%s"
route = "relay"
[client.sources.sealed]
url = "tcp://127.0.0.1:%s"
route = "relay"
relay-encryptions = ["dhxcp"]
[client.sources.sealedtls]
url = "tcp://127.0.0.1:%s"
route = "relay"
relay-encryptions = ["tls"]
`, sourcePort, relayedSourcePort, sealedSourcePort, tlsSourcePort)))
			d.startClient(d.lab.B, "source", d.path("source.toml"))
			if _, _, err := waitStatus(d.lab.B, pathLimit, func(st connet.ClientStatus) bool {
				// Sources are sorted by name: relayed, sealed, sealedtls, web.
				if len(st.Sources) != 4 {
					return false
				}
				for _, src := range st.Sources[:3] {
					if !hasRelay(connet.ClientStatus{Sources: []connet.EndpointStatus{src}}) {
						return false
					}
				}
				return hasDirect(connet.ClientStatus{Sources: st.Sources[3:]})
			}); err != nil {
				t.Fatal(err)
			}

			// Raw reference: in Public, B reaches A's sink directly; behind
			// NATs nothing can reach A, so B's traffic crosses its NAT and
			// the internet to the server host instead.
			rawTarget, rawHost := sinkAddr, d.lab.A
			if d.lab.A.NAT != nil {
				rawTarget = net.JoinHostPort(d.lab.Server.Addr.String(), servicePort)
				rawHost = d.lab.Server
				serveSink(t, d.lab.Server, rawTarget)
			}
			raw := measure(t, d.lab.B, rawTarget)
			// The QUIC ceiling crosses the same hosts and links as raw TCP.
			// It is measured before and after the tunnel figures, and the
			// higher counts: on a shared machine one sample can catch a
			// busy moment, and the two together show how much that moved.
			ceilBefore := quicCeiling(t, bin, d.lab.B, rawHost, 1)
			ceiling8 := quicCeiling(t, bin, d.lab.B, rawHost, 8)
			phase := func(name, port string) float64 {
				return profiled(t, fmt.Sprintf("%s-%s", topo, name), func() float64 {
					return measure(t, d.lab.B, "127.0.0.1:"+port)
				})
			}
			direct := phase("direct", sourcePort)
			directN := profiled(t, fmt.Sprintf("%s-direct_%d", topo, parallelStreams), func() float64 {
				return measureParallel(t, d.lab.B, "127.0.0.1:"+sourcePort, parallelStreams)
			})
			relayed := phase("relay", relayedSourcePort)
			sealed := phase("relay_dhxcp", sealedSourcePort)
			sealedTLS := phase("relay_tls", tlsSourcePort)
			ceilAfter := quicCeiling(t, bin, d.lab.B, rawHost, 1)
			ceiling := max(ceilBefore, ceilAfter)
			t.Logf("MEASURE throughput topology=%s raw_MBps=%.0f (B→%s) quic_ceiling_MBps=%.0f (%.2f of raw; before %.0f, after %.0f) quic_ceiling_8streams_MBps=%.0f (%.2f of raw, %.2f of ceiling)",
				topo, raw, rawHost.Name, ceiling, ceiling/raw, ceilBefore, ceilAfter, ceiling8, ceiling8/raw, ceiling8/ceiling)
			for _, f := range []struct {
				name string
				mbps float64
			}{{"direct", direct}, {fmt.Sprintf("direct_%dstreams", parallelStreams), directN}, {"relay", relayed}, {"relay_dhxcp", sealed}, {"relay_tls", sealedTLS}} {
				t.Logf("MEASURE throughput topology=%s %s_MBps=%.0f (%.2f of raw, %.2f of ceiling)",
					topo, f.name, f.mbps, f.mbps/raw, f.mbps/ceiling)
			}
			t.Logf("MEASURE throughput topology=%s ratios: direct_%dstreams/direct=%.2f relay/direct=%.2f relay_dhxcp/relay=%.2f relay_tls/relay=%.2f",
				topo, parallelStreams, directN/direct, relayed/direct, sealed/relayed, sealedTLS/relayed)
		})
	}
}

// serveSink accepts connections at addr in h's namespace, reads each to
// its end and answers with the number of bytes read.
func serveSink(t *testing.T, h *natlab.Host, addr string) {
	serveTCP(t, h, addr, func(conn net.Conn) {
		n, _ := io.Copy(io.Discard, conn)
		_ = binary.Write(conn, binary.BigEndian, uint64(n))
	})
}

// measureParallel runs measure on n connections to addr at once and
// returns their sum.
func measureParallel(t *testing.T, h *natlab.Host, addr string, n int) float64 {
	t.Helper()
	results := make(chan float64, n)
	for range n {
		go func() {
			// measure fails the test through t, which must happen in
			// the test's goroutine: a failed send reports 0 here.
			mbps, err := measureErr(h, addr)
			if err != nil {
				t.Errorf("parallel connection to %s: %v", addr, err)
			}
			results <- mbps
		}()
	}
	var sum float64
	for range n {
		sum += <-results
	}
	if t.Failed() {
		t.FailNow()
	}
	return sum
}

// measure sends to addr from h for benchDuration and returns MB/s as
// acknowledged by the sink.
func measure(t *testing.T, h *natlab.Host, addr string) float64 {
	t.Helper()
	mbps, err := measureErr(h, addr)
	if err != nil {
		t.Fatal(err)
	}
	return mbps
}

// measureErr is measure, returning its failure.
func measureErr(h *natlab.Host, addr string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := h.DialTCP(ctx, addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	buf := make([]byte, 256<<10)
	start := time.Now()
	for time.Since(start) < benchDuration {
		if _, err := conn.Write(buf); err != nil {
			return 0, fmt.Errorf("write to %s: %w", addr, err)
		}
	}
	if err := conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		return 0, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var n uint64
	if err := binary.Read(conn, binary.BigEndian, &n); err != nil {
		return 0, fmt.Errorf("sink at %s did not acknowledge: %w", addr, err)
	}
	elapsed := time.Since(start)
	if n == 0 {
		return 0, fmt.Errorf("sink at %s received nothing", addr)
	}
	return float64(n) / elapsed.Seconds() / 1e6, nil
}
