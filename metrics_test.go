package connet_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/testprog"
)

// want is one expected metric value: name, labels as name/value pairs;
// with atLeast the value may be larger.
type want struct {
	name    string
	labels  []string
	value   float64
	atLeast bool
}

// eq wants metric name with labels to be value; ge, at least value.
func eq(name string, value float64, labels ...string) want { return want{name, labels, value, false} }
func ge(name string, value float64, labels ...string) want { return want{name, labels, value, true} }

// waitMetrics scrapes addr's /metrics until every want holds, failing the
// test with what was last seen after a 10 s bound.
func waitMetrics(t *testing.T, addr net.Addr, wants ...want) testprog.Metrics {
	t.Helper()
	url := "http://" + addr.String() + "/metrics"
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := testprog.Scrape(context.Background(), url)
		var missing error
		if err != nil {
			missing = err
		} else {
			for _, w := range wants {
				if v, ok := m.Value(w.name, w.labels...); !ok || v != w.value && !(w.atLeast && v > w.value) {
					missing = errors.Join(missing, fmt.Errorf("%s%v = %v (present: %v), want %v", w.name, w.labels, v, ok, w.value))
				}
			}
		}
		if missing == nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics at %s:\n%v", url, missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMetricsCountTunnelledConnections moves data through a relayed tunnel
// and reads the counters at each component's /metrics: the clients' for
// the connection, its path and its bytes, the server's for the relayed
// stream, the connected clients and a refused token.
func TestMetricsCountTunnelledConnections(t *testing.T) {
	h := newHarness(t,
		with(connet.ServerRelayIngress(connet.RelayIngress{Addr: "127.0.0.1:0", Hostports: []string{"127.0.0.1:0"}})),
		with(connet.ServerStatusAddress("127.0.0.1:0")),
		with(connet.ServerBuildVersion("v-test")))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dc := h.connect("token-d", connet.ClientStatusAddress("127.0.0.1:0"))
	sc := h.connect("token-s", connet.ClientStatusAddress("127.0.0.1:0"))
	svc := testprog.ServeTCPEcho(t)
	dst, err := dc.Destination(ctx, connet.NewDestinationConfig("echo").WithRoute(connet.RouteRelay))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = dst.Serve(ctx, func(ctx context.Context, _ netip.AddrPort) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", svc)
		})
	}()
	src, err := sc.Source(ctx, connet.NewSourceConfig("echo"))
	if err != nil {
		t.Fatal(err)
	}

	conn := dialEventually(t, src)
	n := float64(echoRandom(t, conn, 100_000))
	_ = conn.Close()

	endpoint := func(role string, more ...string) []string {
		return append([]string{"endpoint", "echo", "role", role}, more...)
	}
	// Bytes are counted when each connection closes, whoever reads and
	// writes it: the destination's splice, or this test on the source.
	waitMetrics(t, dc.StatusAddr(),
		eq("connet_client_connections_total", 1, endpoint("destination", "path", "relay")...),
		eq("connet_client_connections_active", 0, endpoint("destination", "path", "relay")...),
		eq("connet_client_bytes_total", n, endpoint("destination", "direction", "sent")...),
		eq("connet_client_bytes_total", n, endpoint("destination", "direction", "received")...),
		eq("connet_client_control_connected", 1),
		eq("connet_client_control_reconnects_total", 0),
	)
	m := waitMetrics(t, sc.StatusAddr(),
		eq("connet_client_connections_total", 1, endpoint("source", "path", "relay")...),
		eq("connet_client_connections_active", 0, endpoint("source", "path", "relay")...),
		eq("connet_client_bytes_total", n, endpoint("source", "direction", "sent")...),
		eq("connet_client_bytes_total", n, endpoint("source", "direction", "received")...),
	)
	if v, ok := m.Value("connet_client_path_setup_seconds", "kind", "relay"); !ok || v < 1 {
		t.Errorf("source's relay path setups: %v (present: %v), want at least 1", v, ok)
	}
	if _, ok := m.Value("go_goroutines"); !ok {
		t.Error("no go_goroutines: the Go collector is missing")
	}

	// A refused token counts at the control server.
	bad, cancelBad := context.WithTimeout(ctx, 10*time.Second)
	defer cancelBad()
	if _, err := connet.Connect(bad, h.clientOptions("wrong-token")...); !errors.Is(err, connet.ErrRefused) {
		t.Fatalf("connect with a wrong token: %v", err)
	}
	waitMetrics(t, h.srv.StatusAddr(),
		eq("connet_relay_streams_total", 1),
		eq("connet_relay_streams_active", 0),
		// The relay also carries the tunnel's request and answer.
		ge("connet_relay_bytes_total", n, "direction", "source_to_destination"),
		ge("connet_relay_bytes_total", n, "direction", "destination_to_source"),
		eq("connet_relay_clients", 2),
		eq("connet_control_clients", 2),
		eq("connet_control_relays", 1),
		eq("connet_control_refusals_total", 1, "peer", "client", "reason", "token"),
		eq("connet_build_info", 1, "version", "v-test"),
	)
}
