package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Client holds a client's metrics.
type Client struct {
	conns     *prometheus.CounterVec
	active    *prometheus.GaugeVec
	failures  *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	setup     *prometheus.HistogramVec
	reconnect prometheus.Counter
}

// setupBuckets span a path set up on a LAN (a millisecond) to a punch
// that needed a few retries (tens of seconds).
var setupBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// NewClient registers a client's metrics on reg; controlConnected tells
// at scrape time whether the control connection is up.
func NewClient(reg prometheus.Registerer, controlConnected func() bool) *Client {
	const sub = "client"
	m := &Client{
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: sub, Name: "connections_total",
			Help: "Tunnelled connections opened, by endpoint, role (destination or source) and path kind (direct-outgoing, direct-incoming, relay).",
		}, []string{"endpoint", "role", "path"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: sub, Name: "connections_active",
			Help: "Tunnelled connections open now, by endpoint, role and path kind.",
		}, []string{"endpoint", "role", "path"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: sub, Name: "connection_failures_total",
			Help: "Connections that could not be tunnelled: a source's dial of every destination peer failed, or a destination's dial of its service failed.",
		}, []string{"endpoint", "role"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: sub, Name: "bytes_total",
			Help: "Bytes carried by tunnelled connections that connet spliced, added when each closes; direction sent is into the tunnel, received out of it.",
		}, []string{"endpoint", "role", "direction"}),
		setup: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: sub, Name: "path_setup_seconds",
			Help:    "Time to set up a path: kind direct is a successful punch (dial of the peer's candidates), relay a connection to a relay including its grant.",
			Buckets: setupBuckets,
		}, []string{"kind"}),
		reconnect: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: sub, Name: "control_reconnects_total",
			Help: "Connections to the control server after the first one.",
		}),
	}
	reg.MustRegister(m.conns, m.active, m.failures, m.bytes, m.setup, m.reconnect)
	gaugeFunc(reg, sub, "control_connected", "1 while the control connection is up, else 0.", func() int {
		if controlConnected() {
			return 1
		}
		return 0
	})
	return m
}

// Opened counts a tunnelled connection of an endpoint on a path of kind.
func (m *Client) Opened(endpoint, role, kind string) {
	if m == nil {
		return
	}
	m.conns.WithLabelValues(endpoint, role, kind).Inc()
	m.active.WithLabelValues(endpoint, role, kind).Inc()
}

// Closed counts the end of a connection Opened counted.
func (m *Client) Closed(endpoint, role, kind string) {
	if m == nil {
		return
	}
	m.active.WithLabelValues(endpoint, role, kind).Dec()
}

// Bytes adds a closed connection's totals.
func (m *Client) Bytes(endpoint, role string, sent, received int64) {
	if m == nil {
		return
	}
	m.bytes.WithLabelValues(endpoint, role, "sent").Add(float64(sent))
	m.bytes.WithLabelValues(endpoint, role, "received").Add(float64(received))
}

// Failed counts a connection that could not be tunnelled.
func (m *Client) Failed(endpoint, role string) {
	if m == nil {
		return
	}
	m.failures.WithLabelValues(endpoint, role).Inc()
}

// PathSetup records how long a path of kind ("direct" or "relay") took
// to set up.
func (m *Client) PathSetup(kind string, d time.Duration) {
	if m == nil {
		return
	}
	m.setup.WithLabelValues(kind).Observe(d.Seconds())
}

// Reconnected counts a control connection after the first.
func (m *Client) Reconnected() {
	if m == nil {
		return
	}
	m.reconnect.Inc()
}
