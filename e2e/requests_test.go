package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
)

// TestRequestRate measures small HTTP requests with wrk (16 connections)
// against the service reached directly, through a tcp tunnel, and through
// an http source in front of an http destination, then new connections one
// at a time directly and through the tcp tunnel, all in one run, and prints
// the ratios. Beside them it prints what bench/quicceiling does with the
// same work between the same two hosts over bare QUIC and over TCP, and the
// limit that puts on the tunnel's ratios. It asserts only that requests
// succeeded. Set CONNET_BENCH=1 to run it (scripts/bench.sh does).
func TestRequestRate(t *testing.T) {
	if os.Getenv("CONNET_BENCH") == "" {
		t.Skip("set CONNET_BENCH=1 to measure request rates")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not installed (apt-get install wrk)")
	}
	d := newBenchDeployment(t, natlab.Public)
	// The service, a process of its own, listens on A's lab address, so
	// the direct reference crosses the same link as the tunnel.
	svcAddr := net.JoinHostPort(d.lab.A.Addr.String(), servicePort)
	startService(t, d.lab.A, helloService, svcAddr)
	d.startServer()
	d.write("destination.toml", d.clientConfig("token-a", fmt.Sprintf(`
[client.destinations.web]
url = "tcp://%[1]s"
[client.destinations.webhttp]
url = "http://%[1]s/"
`, svcAddr)))
	d.startClient(d.lab.A, "destination", d.path("destination.toml"))
	d.write("source.toml", d.clientConfig("token-b", `
[client.sources.web]
url = "tcp://127.0.0.1:8000"
[client.sources.webhttp]
url = "http://127.0.0.1:8080/"
`))
	d.startClient(d.lab.B, "source", d.path("source.toml"))
	if _, _, err := waitStatus(d.lab.B, pathLimit, func(st connet.ClientStatus) bool {
		return len(st.Sources) == 2 && hasDirect(connet.ClientStatus{Sources: st.Sources[:1]}) &&
			hasDirect(connet.ClientStatus{Sources: st.Sources[1:]})
	}); err != nil {
		t.Fatal(err)
	}

	wrk := func(phase, url string) wrkResult {
		return profiled(t, "requests-"+phase, func() wrkResult { return runWrk(t, d.lab.B, url) })
	}
	direct := wrk("direct", "http://"+svcAddr+"/")
	tcp := wrk("tcp_tunnel", "http://127.0.0.1:8000/")
	viaHTTP := wrk("http", "http://127.0.0.1:8080/")
	for _, r := range []struct {
		name string
		w    wrkResult
	}{{"tcp_tunnel", tcp}, {"http_source_to_http_destination", viaHTTP}} {
		t.Logf("MEASURE requests %s rps=%.0f (%.2f of direct %.0f) p50_ms=%.2f (direct %.2f) p99_ms=%.2f (%.1fx direct %.2f)",
			r.name, r.w.rps, r.w.rps/direct.rps, direct.rps, r.w.p50, direct.p50, r.w.p99, r.w.p99/direct.p99, direct.p99)
	}

	// What quic-go itself does with the same work between the same two
	// hosts (bench/quicceiling: no TCP legs, no tunnel), and TCP between
	// the same two processes: the limits the ratios above answer to.
	bin := ceilingBin(t)
	quicReq := runCeiling(t, bin, d.lab.B, d.lab.A, "-mode", "requests", "-streams", "16")
	tcpReq := runCeiling(t, bin, d.lab.B, d.lab.A, "-mode", "requests", "-streams", "16", "-over", "tcp")
	// Each request through the tunnel costs what it costs directly, plus a
	// QUIC exchange and a TCP exchange's worth of the clients' work (each
	// client serves one end of a TCP leg); on CPU-bound cores the rate can
	// be no more than this share of the direct one.
	reqBound := (1 / direct.rps) / (1/direct.rps + 1/quicReq["rps"] + 1/tcpReq["rps"])
	t.Logf("MEASURE requests quic_ceiling rps=%.0f (%.2f of tcp %.0f between the same processes) p50_ms=%.3f (tcp %.3f); tunnel at most %.2f of direct",
		quicReq["rps"], quicReq["rps"]/tcpReq["rps"], tcpReq["rps"], quicReq["p50_ms"], tcpReq["p50_ms"], reqBound)

	// New connections, one at a time: connect, one request, the response
	// to its end, as a curl per request does.
	directNew := newConnections(t, d.lab.B, svcAddr)
	tunnelNew := newConnections(t, d.lab.B, "127.0.0.1:8000")
	quicNew := runCeiling(t, bin, d.lab.B, d.lab.A, "-mode", "connect")
	tcpNew := runCeiling(t, bin, d.lab.B, d.lab.A, "-mode", "connect", "-over", "tcp")
	// A tunnelled new connection makes a TCP exchange at each end and a
	// QUIC stream's between them, one after the other, where the direct
	// one makes a single TCP exchange.
	newBound := 2 + quicNew["p50_ms"]/tcpNew["p50_ms"]
	t.Logf("MEASURE new_connection quic_ceiling p50_ms=%.3f (%.1fx tcp %.3f between the same processes) p99_ms=%.3f (tcp %.3f); tunnel at least %.1fx direct",
		quicNew["p50_ms"], quicNew["p50_ms"]/tcpNew["p50_ms"], tcpNew["p50_ms"], quicNew["p99_ms"], tcpNew["p99_ms"], newBound)
	t.Logf("MEASURE new_connection tcp_tunnel p50_ms=%.3f (%.1fx direct %.3f) p99_ms=%.3f (%.1fx direct %.3f)",
		tunnelNew.p50, tunnelNew.p50/directNew.p50, directNew.p50, tunnelNew.p99, tunnelNew.p99/directNew.p99, directNew.p99)
}

// newConnCount is how many connections newConnections opens.
const newConnCount = 500

// newConnections opens newConnCount connections to the HTTP service at
// addr from h one after the other, each sending one request and reading
// the response to its end, and returns the p50 and p99 of the time from
// the dial to the end of the response. Any failure fails the test.
func newConnections(t *testing.T, h *natlab.Host, addr string) wrkResult {
	t.Helper()
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
	times := make([]time.Duration, 0, newConnCount)
	for i := range newConnCount {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		c, err := h.DialTCP(ctx, addr)
		cancel()
		if err != nil {
			t.Fatalf("connection %d to %s: %v", i, addr, err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Write(req)
		var resp []byte
		if err == nil {
			resp, err = io.ReadAll(c)
		}
		times = append(times, time.Since(start))
		_ = c.Close()
		if err != nil || !bytes.HasPrefix(resp, []byte("HTTP/1.1 200")) {
			t.Fatalf("connection %d to %s: %v, response %q", i, addr, err, resp)
		}
	}
	slices.Sort(times)
	ms := func(q float64) float64 { return float64(times[int(q*float64(len(times)-1))]) / 1e6 }
	return wrkResult{p50: ms(0.5), p99: ms(0.99)}
}

type wrkResult struct{ rps, p50, p99 float64 }

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkLatency = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkErrors  = regexp.MustCompile(`Non-2xx or 3xx responses|Socket errors`)
)

// runWrk runs wrk against url from h for benchDuration and parses its
// report; any failed request fails the test.
func runWrk(t *testing.T, h *natlab.Host, url string) wrkResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.Run(ctx, "wrk", "-t2", "-c16", fmt.Sprintf("-d%ds", int(benchDuration.Seconds())), "--latency", url)
	if err != nil {
		t.Fatalf("wrk %s: %v", url, err)
	}
	if wrkErrors.MatchString(out) {
		t.Fatalf("wrk %s saw failed requests:\n%s", url, out)
	}
	var r wrkResult
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("wrk %s: no request rate in\n%s", url, out)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, m := range wrkLatency.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if m[1] == "50" {
			r.p50 = v
		} else {
			r.p99 = v
		}
	}
	if r.rps == 0 || r.p50 == 0 || r.p99 == 0 {
		t.Fatalf("wrk %s: incomplete report\n%s", url, out)
	}
	return r
}
