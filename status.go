package connet

import (
	"cmp"
	"runtime"
	"slices"
	"time"

	"github.com/p2pconnet/connet/internal/endpoints"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/relayclient"
)

// ProcessStatus heads every status page: what serves it, its build
// version and when it started.
type ProcessStatus struct {
	// Kind is "client", "server" (a control server with a relay in its
	// process), "control" (one without) or "relay".
	Kind    string `json:"kind"`
	Version string `json:"version"`
	// Started is when the client, server or relay was created: in the
	// connet binary, when the process started.
	Started time.Time `json:"started"`
}

// ClientStatus is a snapshot of a client, as its status page shows it.
type ClientStatus struct {
	ProcessStatus
	ID         string        `json:"id"`
	DirectAddr string        `json:"direct_addr"`
	Control    ControlStatus `json:"control"`
	// PortMapping is the port mapping on the NAT gateway; absent when
	// port mapping is off (nat-pmp disabled, or a socket on loopback).
	PortMapping  *PortMappingStatus `json:"port_mapping,omitempty"`
	Relays       []RelayStatus      `json:"relays"`
	Destinations []EndpointStatus   `json:"destinations"`
	Sources      []EndpointStatus   `json:"sources"`
	// Goroutines counts the goroutines of the whole process, so an
	// operator (and the soak test) can see that they do not pile up.
	Goroutines int `json:"goroutines"`
}

// ControlStatus is the state of the connection to the control server, of
// a client or of a relay that runs apart.
type ControlStatus struct {
	Server    string `json:"server"`
	Connected bool   `json:"connected"`
	// Transport carries the connection while connected: "quic", or "tcp"
	// where the client fell back because UDP is blocked.
	Transport string `json:"transport,omitempty"`
	Observed  string `json:"observed,omitempty"`
	// NAT is how the client's NAT maps its socket, when known:
	// "independent" or "per-destination" (a symmetric NAT).
	NAT       string    `json:"nat,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"since"`
}

// RelayStatus is one relay the control server offers.
type RelayStatus = relayclient.Status

// EndpointStatus is one destination or source.
type EndpointStatus struct {
	Name string `json:"name"`
	// Route is the endpoint's own route option.
	Route string `json:"route"`
	// Refused is set when the control server refused the endpoint.
	Refused string `json:"refused,omitempty"`
	// LastError is why the last connection failed, cleared by a success.
	LastError string `json:"last_error,omitempty"`
	// LastReason is the short name of LastError's reason, for a source:
	// no-peer, peer-unreachable, route-mismatch or endpoint-refused (see
	// DialReason); empty when the error names none.
	LastReason        string       `json:"last_reason,omitempty"`
	ActiveConnections int64        `json:"active_connections"`
	TotalConnections  int64        `json:"total_connections"`
	Peers             []PeerStatus `json:"peers"`
}

// PeerStatus is one peer of an endpoint: for a destination its sources,
// for a source its destinations.
type PeerStatus struct {
	ID         string   `json:"id"`
	Metadata   string   `json:"metadata,omitempty"`
	Announced  bool     `json:"announced"`
	Route      string   `json:"route"`
	Candidates []string `json:"candidates"`
	// ActiveConnections counts this endpoint's open connections with the
	// peer (what lb-policy least-conns compares).
	ActiveConnections int64        `json:"active_connections"`
	Paths             []PathStatus `json:"paths"`
}

// PathStatus is one live path to a peer.
type PathStatus struct {
	Kind   string  `json:"kind"`
	Remote string  `json:"remote"`
	RTTms  float64 `json:"rtt_ms"`
	// Stale is set when the path has received nothing for a while: it is
	// chosen for new connections only if nothing else is left.
	Stale bool `json:"stale,omitempty"`
}

// Status returns a snapshot of the client.
func (c *Client) Status() ClientStatus {
	st, _ := c.session.Status()
	out := ClientStatus{
		ProcessStatus: ProcessStatus{Kind: "client", Version: c.cfg.buildVersion, Started: c.started},
		Goroutines:    runtime.NumGoroutine(),
		ID:            c.id.ID.String(),
		DirectAddr:    c.udp.LocalAddr().String(),
		Control: ControlStatus{
			Server:    c.cfg.controlAddr,
			Connected: st.Connected,
			Transport: string(st.Transport),
			LastError: st.LastError,
			Since:     st.Since,
		},
		PortMapping:  c.portMappingStatus(),
		Relays:       c.relays.Status(),
		Destinations: []EndpointStatus{},
		Sources:      []EndpointStatus{},
	}
	if st.Observed.IsValid() {
		out.Control.Observed = st.Observed.String()
	}
	out.Control.NAT = string(c.nat.Load().(peer.NAT))
	for _, e := range c.endpoints.Role(peer.Destination) {
		out.Destinations = append(out.Destinations, c.endpointStatus(e))
	}
	for _, e := range c.endpoints.Role(peer.Source) {
		out.Sources = append(out.Sources, c.endpointStatus(e))
	}
	return out
}

// endpointStatus shows one of the client's endpoints.
func (c *Client) endpointStatus(e *endpoints.Endpoint) EndpointStatus {
	last := e.LastError()
	es := EndpointStatus{
		Name:              e.Key.Name,
		Route:             string(e.Route),
		LastError:         last.Msg,
		LastReason:        last.Reason,
		ActiveConnections: e.Active(),
		TotalConnections:  e.Total(),
		Peers:             []PeerStatus{},
	}
	if err := c.endpoints.Refusal(e.Key); err != nil {
		es.Refused = err.Error()
	}
	for _, p := range c.registry.WithEndpoint(e.Key.Name, e.Key.Role.Opposite()) {
		ps := c.peerStatus(p, e.Key.Name, e.Key.Role.Opposite(), e.Route)
		ps.ActiveConnections = e.ActiveWith(p.ID)
		es.Peers = append(es.Peers, ps)
	}
	slices.SortFunc(es.Peers, func(a, b PeerStatus) int { return cmp.Compare(a.ID, b.ID) })
	return es
}

// peerStatus shows a peer of an endpoint with the paths both ends' routes
// allow, best first, as sources choose them.
func (c *Client) peerStatus(p *peer.Peer, name string, role peer.Role, route netpath.Route) PeerStatus {
	st, _ := p.State()
	pe, _ := st.Endpoint(name, role)
	ps := PeerStatus{
		ID:         p.ID.String(),
		Metadata:   st.Info.Metadata,
		Announced:  st.Announced,
		Route:      string(pe.Route),
		Candidates: []string{},
		Paths:      []PathStatus{},
	}
	for _, a := range st.Info.Candidates {
		ps.Candidates = append(ps.Candidates, a.String())
	}
	for _, pp := range st.UsablePaths(route, pe.Route) {
		ps.Paths = append(ps.Paths, PathStatus{
			Kind:   string(pp.Kind()),
			Remote: pp.RemoteAddr().String(),
			RTTms:  float64(pp.RTT().Microseconds()) / 1000,
			Stale:  netpath.Stale(pp),
		})
	}
	return ps
}
