package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestEndpointCountsAConnection(t *testing.T) {
	m := NewClient(prometheus.NewRegistry(), func() bool { return true }, func() int { return 0 })
	e := m.Endpoint("web", "source", "direct-outgoing", "relay")
	e.Opened("relay")
	if got := testutil.ToFloat64(m.active.WithLabelValues("web", "source", "relay")); got != 1 {
		t.Fatalf("active %v after open, want 1", got)
	}
	e.Closed("relay")
	e.Bytes(10, 20)
	if got := testutil.ToFloat64(m.active.WithLabelValues("web", "source", "relay")); got != 0 {
		t.Fatalf("active %v after close, want 0", got)
	}
	if got := testutil.ToFloat64(m.conns.WithLabelValues("web", "source", "relay")); got != 1 {
		t.Fatalf("total %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.conns.WithLabelValues("web", "source", "direct-outgoing")); got != 0 {
		t.Fatalf("total on another kind %v, want 0", got)
	}
	if got := testutil.ToFloat64(m.bytes.WithLabelValues("web", "source", "received")); got != 20 {
		t.Fatalf("received %v, want 20", got)
	}
	var none *Client
	none.Endpoint("web", "source").Opened("relay") // nil counts nothing, and does not panic
}

// BenchmarkEndpointConnection is what counting costs one tunnelled
// connection: its open, its close and its bytes, once each.
func BenchmarkEndpointConnection(b *testing.B) {
	e := NewClient(prometheus.NewRegistry(), func() bool { return true }, func() int { return 0 }).Endpoint("web", "source", "direct-outgoing")
	for range b.N {
		e.Opened("direct-outgoing")
		e.Closed("direct-outgoing")
		e.Bytes(1000, 2000)
	}
}
