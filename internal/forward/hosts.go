package forward

import (
	"fmt"
	"net/http"
	"net/netip"

	"github.com/p2pconnet/connet/internal/config"
)

// hostPolicy decides which host names an http/https/ws/wss source answers
// to. Against DNS rebinding: a web page at attacker.example whose name is
// made to resolve to 127.0.0.1 afterwards is, for the browser, still of
// attacker.example's origin, so it may read what the source answers, and
// its requests carry "Host: attacker.example". The attacker controls the
// name, not the address; refusing names that are not ours stops it.
//
// Accepted by default: localhost, any IP address (a page can only have an
// IP address as its origin if that address served it, so no name is
// involved: this covers the loopback addresses, the listener's own, and
// whatever address a LAN client, a port forward or a container's port
// mapping reaches the source at), and the host name of the source's URL.
// allowed-hosts adds names, with or without a port; "*" turns the check
// off.
type hostPolicy struct {
	any bool
	// names are hosts accepted on any port; hostports "host:port" pairs.
	names     map[string]bool
	hostports map[string]bool
	// defaultPort is the port a Host without one means (80 or 443).
	defaultPort string
}

// newHostPolicy builds the policy of a source from its URL and its
// validated allowed-hosts entries (see config.NormalizeHost).
func newHostPolicy(s config.SourceSettings) hostPolicy {
	p := hostPolicy{names: map[string]bool{"localhost": true}, hostports: map[string]bool{}, defaultPort: defaultPorts[s.URL.Scheme]}
	if host, _, err := config.SplitHost(s.URL.Hostname()); err == nil {
		p.names[host] = true
	}
	for _, h := range s.AllowedHosts {
		if h == "*" {
			p.any = true
			continue
		}
		host, port, err := config.SplitHost(h)
		switch {
		case err != nil:
		case port == "":
			p.names[host] = true
		default:
			p.hostports[host+":"+port] = true
		}
	}
	return p
}

// allows reports whether a request with Host header host may proceed. A
// request without one (HTTP/1.0) is not from a browser, which always sends
// it, and passes.
func (p hostPolicy) allows(host string) bool {
	if host == "" || p.any {
		return true
	}
	name, port, err := config.SplitHost(host)
	if err != nil {
		return false
	}
	if _, err := netip.ParseAddr(name); err == nil || p.names[name] {
		return true
	}
	if port == "" {
		port = p.defaultPort
	}
	return p.hostports[name+":"+port]
}

// checkHost answers 421 Misdirected Request to a request for a host name
// the source does not answer to, before anything reaches the tunnel: the
// request was meant for a server of that name, not for this one (403 would
// say the client lacks a permission, which no credential could give).
func (s *Source) checkHost(h http.Handler) http.Handler {
	policy := newHostPolicy(s.settings)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !policy.allows(r.Host) {
			s.log.Warn("source refused a request for a host name not its own", "client", r.RemoteAddr, "host", r.Host, "method", r.Method, "path", r.URL.Path)
			http.Error(w, fmt.Sprintf("connet: this source does not answer to host %q (see allowed-hosts)", r.Host), http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}
