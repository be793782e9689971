package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/p2pconnet/connet"
)

// renderStatus prints a status document as tables; now is the time the
// uptime is counted to.
func renderStatus(w io.Writer, doc []byte, now time.Time) error {
	kind, err := statusKind(doc)
	if err != nil {
		return err
	}
	p := &printer{w: w, now: now}
	switch kind {
	case "client":
		var st connet.ClientStatus
		if err := json.Unmarshal(doc, &st); err != nil {
			return fmt.Errorf("client status: %w", err)
		}
		p.client(st)
	case "server", "control":
		var st connet.ServerStatus
		if err := json.Unmarshal(doc, &st); err != nil {
			return fmt.Errorf("server status: %w", err)
		}
		p.server(st)
	case "relay":
		var st connet.RelayServerStatus
		if err := json.Unmarshal(doc, &st); err != nil {
			return fmt.Errorf("relay status: %w", err)
		}
		p.relay(st)
	default:
		return fmt.Errorf("status document of unknown kind %q", kind)
	}
	return p.err
}

// printer writes sections, remembering the first write error.
type printer struct {
	w   io.Writer
	now time.Time
	err error
}

func (p *printer) line(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
	}
}

// table prints a header and rows in aligned columns, after a blank line.
func (p *printer) table(header string, rows [][]string) {
	p.line("")
	if p.err != nil {
		return
	}
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(strings.Fields(header), "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	p.err = tw.Flush()
}

// head prints the first line every document has.
func (p *printer) head(ps connet.ProcessStatus, id string) {
	what := "connet " + ps.Kind
	if id != "" {
		what += " " + id
	}
	version := ps.Version
	if version == "" {
		version = "unknown"
	}
	if ps.Started.IsZero() {
		p.line("%s, version %s", what, version)
		return
	}
	p.line("%s, version %s, started %s (up %s)", what, version, stamp(ps.Started), p.now.Sub(ps.Started).Round(time.Second))
}

// control prints the state of a connection to a control server.
func (p *printer) control(c connet.ControlStatus) {
	state := "not connected"
	if c.Connected {
		state = "connected"
		if c.Transport != "" && c.Transport != "quic" {
			state += " over " + c.Transport
		}
	}
	line := fmt.Sprintf("control  %s  %s since %s", c.Server, state, stamp(c.Since))
	if c.Observed != "" {
		line += ", observed as " + c.Observed
	}
	if c.NAT == "per-destination" {
		line += " (symmetric NAT)"
	}
	p.line("%s", line)
}

// portMapping prints the client's port mapping, if port mapping is on.
func (p *printer) portMapping(pm *connet.PortMappingStatus) {
	switch {
	case pm == nil:
	case pm.External == "":
		p.line("portmap  none (nat-pmp %s)", pm.Mode)
	default:
		exp := "-"
		if pm.Expires != nil {
			exp = stamp(*pm.Expires)
		}
		p.line("portmap  %s  by %s at %s, expires %s (nat-pmp %s)", pm.External, pm.Protocol, pm.Gateway, exp, pm.Mode)
	}
}

func (p *printer) client(st connet.ClientStatus) {
	p.head(st.ProcessStatus, st.ID)
	p.line("direct   %s", st.DirectAddr)
	p.control(st.Control)
	p.portMapping(st.PortMapping)
	p.clientRelays(st.Relays)
	p.endpoints(st.Destinations, st.Sources)
	p.errors(clientErrors(st))
}

// clientRelays prints the relays offered to the client.
func (p *printer) clientRelays(rs []connet.RelayStatus) {
	if len(rs) == 0 {
		p.line("")
		p.line("no relays offered")
		return
	}
	rows := [][]string{}
	for _, r := range rs {
		rtt := "-"
		if r.Connected {
			rtt = ms(r.RTTms)
		}
		connected := yesNo(r.Connected)
		if r.Connected && r.Transport != "" && r.Transport != "quic" {
			connected += " (" + r.Transport + ")"
		}
		rows = append(rows, []string{r.ID, strings.Join(r.Hostports, ","), connected, dash(r.Remote), rtt})
	}
	p.table("RELAY HOSTPORTS CONNECTED REMOTE RTT", rows)
}

// endpoints prints the client's destinations and sources, a row for each
// path to each of their peers.
func (p *printer) endpoints(destinations, sources []connet.EndpointStatus) {
	rows := append(endpointRows("destination", destinations), endpointRows("source", sources)...)
	if len(rows) == 0 {
		p.line("")
		p.line("no destinations or sources")
		return
	}
	p.table("ENDPOINT ROLE ROUTE CONNS(ACTIVE/TOTAL) PEER PATH REMOTE RTT", rows)
}

// endpointRows are the rows of the endpoints of a role: an endpoint is
// named on its first row only, and one without peers has a row of its own.
func endpointRows(role string, es []connet.EndpointStatus) [][]string {
	rows := [][]string{}
	for _, e := range es {
		conns := fmt.Sprintf("%d/%d", e.ActiveConnections, e.TotalConnections)
		if len(e.Peers) == 0 {
			rows = append(rows, []string{e.Name, role, e.Route, conns, "-", "-", "-", "-"})
			continue
		}
		for i, peer := range e.Peers {
			lead := []string{"", "", "", ""}
			if i == 0 {
				lead = []string{e.Name, role, e.Route, conns}
			}
			rows = append(rows, peerRows(lead, peer)...)
		}
	}
	return rows
}

// peerRows are the rows of the paths to a peer, the first one led by lead
// (the endpoint's columns) and the peer's ID; a peer without paths has a
// row saying so.
func peerRows(lead []string, peer connet.PeerStatus) [][]string {
	first := slices.Concat(lead, []string{peer.ID})
	if len(peer.Paths) == 0 {
		return [][]string{slices.Concat(first, []string{"none", "-", "-"})}
	}
	rows := make([][]string, 0, len(peer.Paths))
	for j, pa := range peer.Paths {
		row := first
		if j > 0 {
			row = []string{"", "", "", "", ""}
		}
		kind := pa.Kind
		if pa.Stale {
			kind += " (stale)"
		}
		rows = append(rows, slices.Concat(row, []string{kind, pa.Remote, ms(pa.RTTms)}))
	}
	return rows
}

// clientErrors are the last errors of the client's control connection,
// relays and endpoints, and the refusals of its endpoints.
func clientErrors(st connet.ClientStatus) []string {
	var errs []string
	if st.Control.LastError != "" {
		errs = append(errs, "control: "+st.Control.LastError)
	}
	for _, r := range st.Relays {
		if r.LastError != "" {
			errs = append(errs, "relay "+r.ID+": "+r.LastError)
		}
	}
	errs = append(errs, endpointErrors("destination", st.Destinations)...)
	return append(errs, endpointErrors("source", st.Sources)...)
}

// endpointErrors are the refusals and last errors of the endpoints of a
// role.
func endpointErrors(role string, es []connet.EndpointStatus) []string {
	var errs []string
	for _, e := range es {
		if e.Refused != "" {
			errs = append(errs, role+" "+e.Name+": "+e.Refused)
		}
		if e.LastError != "" {
			errs = append(errs, role+" "+e.Name+": "+e.LastError)
		}
	}
	return errs
}

// errors prints the last errors, if there are any.
func (p *printer) errors(errs []string) {
	if len(errs) == 0 {
		return
	}
	p.line("")
	p.line("LAST ERRORS")
	for _, e := range errs {
		p.line("  %s", e)
	}
}

func (p *printer) server(st connet.ServerStatus) {
	p.head(st.ProcessStatus, "")

	clients := [][]string{}
	for _, c := range st.Control.Clients {
		var eps []string
		for _, e := range c.Endpoints {
			eps = append(eps, fmt.Sprintf("%s (%s, %s)", e.Name, e.Role, e.Route))
		}
		clients = append(clients, []string{c.ID, dash(c.Metadata), c.Observed, dash(strings.Join(eps, ", "))})
	}
	if len(clients) == 0 {
		p.line("")
		p.line("no clients connected")
	} else {
		p.table("CLIENT METADATA OBSERVED ENDPOINTS", clients)
	}

	relays := [][]string{}
	for _, r := range st.Control.Relays {
		from := r.Remote
		if r.InProcess {
			from = "in process"
		}
		relays = append(relays, []string{r.ID, strings.Join(r.Hostports, ","), from, dash(r.Version), dash(r.Metadata), stamp(r.Since)})
	}
	if len(relays) == 0 {
		p.line("")
		p.line("no relays offered to clients")
	} else {
		p.table("RELAY HOSTPORTS FROM VERSION METADATA SINCE", relays)
	}

	if st.Relay != nil {
		p.line("")
		p.line("in-process relay %s", st.Relay.ID)
		p.relayClients(st.Relay.Clients)
	}
}

func (p *printer) relay(st connet.RelayServerStatus) {
	p.head(st.ProcessStatus, st.ID)
	p.control(st.Control)
	p.relayClients(st.Clients)
	if st.Control.LastError != "" {
		p.errors([]string{"control: " + st.Control.LastError})
	}
}

func (p *printer) relayClients(cs []connet.RelayClientStatus) {
	rows := [][]string{}
	for _, c := range cs {
		rows = append(rows, []string{c.ID, c.Remote, strconv.FormatInt(c.Streams, 10)})
	}
	if len(rows) == 0 {
		p.line("no clients at the relay")
		return
	}
	p.table("RELAY-CLIENT REMOTE ACTIVE-STREAMS", rows)
}

// stamp shows a time to a person, in their time zone; "-" if unknown.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

func ms(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "ms" }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
