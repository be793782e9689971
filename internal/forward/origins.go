package forward

import (
	"net/http"
	"net/url"
	"strings"
)

// originPolicy decides which browser pages may open a WebSocket to a ws/wss
// source. A browser attaches any page's Origin to a WebSocket handshake and
// does not apply the same-origin policy to it, so without this check every
// website a user visits could reach the tunnelled service through the local
// source. Non-browser clients send no Origin and are not concerned.
type originPolicy struct {
	any     bool
	allowed map[string]bool // "scheme://host[:port]", lower case
}

// newOriginPolicy builds the policy from validated allowed-origins entries
// (already in lower case, see config.NormalizeOrigin).
func newOriginPolicy(list []string) originPolicy {
	p := originPolicy{allowed: map[string]bool{}}
	for _, o := range list {
		if o == "*" {
			p.any = true
			continue
		}
		p.allowed[strings.ToLower(o)] = true
	}
	return p
}

// allows reports whether r may proceed: no Origin (not a browser), the
// same origin as the request's Host, or a listed origin. The Host has
// passed the source's hostPolicy by then: on its own, "same as Host" would
// let in a page whose name was re-resolved to this machine (DNS
// rebinding), since such a page's Origin and Host name the same site.
func (p originPolicy) allows(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		// e.g. "null" from sandboxed frames and file: pages: it names no
		// site, so only "*" lets it in.
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return p.allowed[strings.ToLower(u.Scheme+"://"+u.Host)]
}
