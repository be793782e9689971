package metrics

import "github.com/prometheus/client_golang/prometheus"

// Relay holds a relay's metrics.
type Relay struct {
	streams  prometheus.Counter
	active   prometheus.Gauge
	bytes    *prometheus.CounterVec
	refusals *prometheus.CounterVec
}

// Refusal reasons of a relay (besides ReasonAddress and ReasonConnections).
const (
	ReasonGrant     = "grant"      // a grant missing, expired, forged or of another client
	ReasonNotPaired = "not_paired" // the two clients' grants share no relayable endpoint
	ReasonNoPeer    = "no_peer"    // the peer asked for is not at this relay
	ReasonPending   = "pending"    // over the quota of streams waiting (to pair; at a client, for an answer)
	ReasonStreams   = "streams"    // over the quota of relayed connections, or of stream windows
	// and ReasonRequest, a malformed request.
)

// NewRelay registers a relay's metrics on reg; clients counts the
// connected clients at scrape time.
func NewRelay(reg prometheus.Registerer, clients func() int) *Relay {
	const sub = "relay"
	m := &Relay{
		streams: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: sub, Name: "streams_total",
			Help: "Relayed connections: streams paired with a stream to the peer.",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: sub, Name: "streams_active",
			Help: "Relayed connections open now.",
		}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: sub, Name: "bytes_total",
			Help: "Bytes relayed, added when each connection closes; direction is from the client that opened it (source_to_destination) or back.",
		}, []string{"direction"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: sub, Name: "refusals_total",
			Help: "Refused clients and streams, by reason: address, grant, not_paired, no_peer, pending, streams, request.",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.streams, m.active, m.bytes, m.refusals)
	// Both directions show from the start, at 0.
	m.bytes.WithLabelValues("source_to_destination")
	m.bytes.WithLabelValues("destination_to_source")
	gaugeFunc(reg, sub, "clients", "Clients connected now.", clients)
	return m
}

// StreamOpened counts a relayed connection.
func (m *Relay) StreamOpened() {
	if m == nil {
		return
	}
	m.streams.Inc()
	m.active.Inc()
}

// StreamClosed counts the end of a relayed connection and its bytes.
func (m *Relay) StreamClosed(fromSource, toSource int64) {
	if m == nil {
		return
	}
	m.active.Dec()
	m.bytes.WithLabelValues("source_to_destination").Add(float64(fromSource))
	m.bytes.WithLabelValues("destination_to_source").Add(float64(toSource))
}

// Refused counts a refusal for reason.
func (m *Relay) Refused(reason string) {
	if m == nil {
		return
	}
	m.refusals.WithLabelValues(reason).Inc()
}
