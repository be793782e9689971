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
	refusals  *prometheus.CounterVec
}

// setupBuckets span a path set up on a LAN (a millisecond) to a punch
// that needed a few retries (tens of seconds).
var setupBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// NewClient registers a client's metrics on reg; controlConnected tells
// at scrape time whether the control connection is up, pendingStreams how
// many streams peers opened to the client wait for an answer.
func NewClient(reg prometheus.Registerer, controlConnected func() bool, pendingStreams func() int) *Client {
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
			Help: "Bytes carried by tunnelled connections, added when each closes; direction sent is into the tunnel, received out of it.",
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
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: sub, Name: "refusals_total",
			Help: "Streams peers opened to this client that were refused, by reason: pending (the peer had as many streams waiting for an answer as its quota allows).",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.conns, m.active, m.failures, m.bytes, m.setup, m.reconnect, m.refusals)
	m.refusals.WithLabelValues(ReasonPending) // shows from the start, at 0
	gaugeFunc(reg, sub, "streams_pending", "Streams peers opened to this client that wait for an answer now: for their request, for the destination to take them, for the service's dial.", pendingStreams)
	gaugeFunc(reg, sub, "control_connected", "1 while the control connection is up, else 0.", func() int {
		if controlConnected() {
			return 1
		}
		return 0
	})
	return m
}

// Endpoint holds the series of one endpoint, looked up once when the
// endpoint is made so that counting a connection costs a few atomic
// additions and no label hashing.
type Endpoint struct {
	byKind         map[string]pathSeries
	sent, received prometheus.Counter
	failures       prometheus.Counter
}

type pathSeries struct {
	total  prometheus.Counter
	active prometheus.Gauge
}

// Endpoint returns the series of an endpoint with role ("destination" or
// "source") for connections on paths of kinds; they show from now on, at
// zero.
func (m *Client) Endpoint(name, role string, kinds ...string) *Endpoint {
	if m == nil {
		return nil
	}
	e := &Endpoint{
		byKind:   map[string]pathSeries{},
		sent:     m.bytes.WithLabelValues(name, role, "sent"),
		received: m.bytes.WithLabelValues(name, role, "received"),
		failures: m.failures.WithLabelValues(name, role),
	}
	for _, k := range kinds {
		e.byKind[k] = pathSeries{m.conns.WithLabelValues(name, role, k), m.active.WithLabelValues(name, role, k)}
	}
	return e
}

// Opened counts a tunnelled connection on a path of kind, one of those
// the endpoint was made with.
func (e *Endpoint) Opened(kind string) {
	if e == nil {
		return
	}
	s := e.byKind[kind]
	if s.total == nil {
		return
	}
	s.total.Inc()
	s.active.Inc()
}

// Closed counts the end of a connection Opened counted.
func (e *Endpoint) Closed(kind string) {
	if e == nil {
		return
	}
	if s := e.byKind[kind]; s.active != nil {
		s.active.Dec()
	}
}

// Bytes adds a closed connection's totals.
func (e *Endpoint) Bytes(sent, received int64) {
	if e == nil {
		return
	}
	e.sent.Add(float64(sent))
	e.received.Add(float64(received))
}

// Failed counts a connection that could not be tunnelled.
func (e *Endpoint) Failed() {
	if e == nil {
		return
	}
	e.failures.Inc()
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

// Refused counts a stream a peer opened that was refused for reason.
func (m *Client) Refused(reason string) {
	if m == nil {
		return
	}
	m.refusals.WithLabelValues(reason).Inc()
}
