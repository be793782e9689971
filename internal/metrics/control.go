package metrics

import "github.com/prometheus/client_golang/prometheus"

// Control holds a control server's metrics.
type Control struct {
	refusals *prometheus.CounterVec
}

// Refusal reasons of a control server.
const (
	ReasonToken    = "token"    // unknown token
	ReasonAddress  = "address"  // an ingress's or token's CIDR rules
	ReasonLimit    = "limit"    // a hello or metadata over the limits
	ReasonEndpoint = "endpoint" // an endpoint the token may not have (name, role, limits)
	ReasonRequest  = "request"  // a malformed request
	// ReasonConnections is a TCP connection over an ingress's limits of
	// connections and unfinished handshakes (a relay's too).
	ReasonConnections = "connections"
)

// NewControl registers a control server's metrics on reg; clients and
// relays count what is connected at scrape time.
func NewControl(reg prometheus.Registerer, clients, relays func() int) *Control {
	const sub = "control"
	m := &Control{refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: sub, Name: "refusals_total",
		Help: "Refusals, by who was refused (client or relay) and reason: token, address, limit, endpoint, request.",
	}, []string{"peer", "reason"})}
	reg.MustRegister(m.refusals)
	gaugeFunc(reg, sub, "clients", "Clients connected now.", clients)
	gaugeFunc(reg, sub, "relays", "Relays offered to clients now (joined over the network or in the same process).", relays)
	return m
}

// Refused counts a refusal of peer ("client" or "relay") for reason.
func (m *Control) Refused(peer, reason string) {
	if m == nil {
		return
	}
	m.refusals.WithLabelValues(peer, reason).Inc()
}
