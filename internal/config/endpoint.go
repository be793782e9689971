package config

import (
	"cmp"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/p2pconnet/connet/internal/balance"
	"github.com/p2pconnet/connet/internal/e2ee"
	"github.com/p2pconnet/connet/internal/netpath"
)

// ProxyProtoVersion selects the PROXY protocol header a destination sends to
// its service; empty means none.
type ProxyProtoVersion string

// PROXY protocol versions accepted by proxy-proto-version.
const (
	ProxyProtoNone ProxyProtoVersion = ""
	ProxyProtoV1   ProxyProtoVersion = "v1"
	ProxyProtoV2   ProxyProtoVersion = "v2"
)

// InsecureSkipVerify is the special cas-file value that disables server
// certificate verification for TLS/HTTPS destinations.
const InsecureSkipVerify = "insecure-skip-verify"

// DestinationSettings is a validated [client.destinations.NAME] table.
type DestinationSettings struct {
	Name              string
	Route             netpath.Route
	RelayEncryptions  []e2ee.Encryption
	ProxyProtoVersion ProxyProtoVersion
	// DialTimeout bounds connecting to the service; 0 waits forever.
	DialTimeout time.Duration
	// URL is the service to connect to; its scheme is one of tcp, tls,
	// http, https, file.
	URL *url.URL
	// CAsFile is the CA bundle to verify a TLS/HTTPS service with (empty:
	// system roots). It is empty when InsecureSkipVerify is set.
	CAsFile            string
	InsecureSkipVerify bool
	// CertFile and KeyFile are the client certificate for mutual TLS; both
	// or neither are set.
	CertFile string
	KeyFile  string
	// ServeDotfiles (file only) serves paths with a component starting
	// with '.'; by default they are hidden (404), as .env or .git hold
	// what a site should not show.
	ServeDotfiles bool
}

// FilePath returns the path to serve for a file: URL ("" otherwise),
// covering both file:///absolute and file:relative forms.
func (d DestinationSettings) FilePath() string {
	if d.URL == nil || d.URL.Scheme != "file" {
		return ""
	}
	return filePath(d.URL)
}

// SourceSettings is a validated [client.sources.NAME] table.
type SourceSettings struct {
	Name             string
	Route            netpath.Route
	RelayEncryptions []e2ee.Encryption
	// DialTimeout bounds each attempt to reach a destination peer; 0 waits
	// forever.
	DialTimeout time.Duration
	// URL is what to listen on; its scheme is one of tcp, tls, http, https,
	// ws, wss.
	URL *url.URL
	// CertFile and KeyFile are the server certificate for tls/https/wss
	// (required for those schemes). CAsFile, when set, enables mutual TLS by
	// naming the CAs that client certificates must chain to.
	CertFile string
	KeyFile  string
	CAsFile  string

	LBPolicy balance.Policy
	LBRetry  balance.RetryPolicy
	// LBRetryMax is the number of peers to try (balance.Count) or the number
	// of milliseconds to keep trying (balance.Timed), defaults applied; it is
	// 0 for the other retry policies, which ignore it.
	LBRetryMax int

	// AllowedOrigins (ws/wss only) are the browser origins allowed besides
	// the source's own, each "scheme://host[:port]" in lower case, or "*"
	// for any. Without it a page of another origin is refused, so that a
	// website a user visits cannot reach the tunnelled service.
	AllowedOrigins []string
	// AllowedHosts (http, https, ws, wss) are the names a client may reach
	// the source by besides localhost, IP addresses and the URL's own host,
	// each "host" (any port) or "host:port" in lower case, or "*" for any.
	// A request for another name is refused, so that a page whose name
	// re-resolves to this machine (DNS rebinding) cannot use the source.
	AllowedHosts []string
}

func (r *resolver) endpointName(p keyPath, name string) {
	if strings.TrimSpace(name) == "" {
		r.failf(p, "endpoint name must not be empty")
	}
}

func (r *resolver) destination(p keyPath, name string, dc DestinationConfig, defEnc []e2ee.Encryption) DestinationSettings {
	r.endpointName(p, name)
	d := DestinationSettings{
		Name:              name,
		Route:             oneOf(r, p.key("route"), dc.Route, netpath.RouteAny, netpath.RouteAny, netpath.RouteDirect, netpath.RouteRelay),
		RelayEncryptions:  r.relayEncryptions(p.key("relay-encryptions"), dc.RelayEncryptions, defEnc),
		ProxyProtoVersion: oneOf(r, p.key("proxy-proto-version"), dc.ProxyProtoVersion, ProxyProtoNone, ProxyProtoV1, ProxyProtoV2),
		DialTimeout:       r.duration(p.key("dial-timeout"), dc.DialTimeout, 0, false),
		CAsFile:           dc.CAsFile,
		CertFile:          dc.CertFile,
		KeyFile:           dc.KeyFile,
		ServeDotfiles:     dc.ServeDotfiles,
	}
	var rule urlRule
	d.URL, rule, _ = r.endpointURL(p.key("url"), dc.URL, destinationSchemes)
	if d.URL != nil {
		for _, kv := range [][2]string{{"cas-file", dc.CAsFile}, {"cert-file", dc.CertFile}, {"key-file", dc.KeyFile}} {
			r.appliesTo(p.key(kv[0]), kv[1] != "", rule.tls, "tls and https destinations", d.URL.Scheme)
		}
		r.appliesTo(p.key("dial-timeout"), dc.DialTimeout != "", !rule.file, "destinations that dial a service", d.URL.Scheme)
		r.appliesTo(p.key("serve-dotfiles"), dc.ServeDotfiles, rule.file, "file destinations", d.URL.Scheme)
	}
	// A PROXY header goes at the start of a raw connection; http, https and
	// file destinations speak HTTP themselves and pass the client on in
	// X-Forwarded-For, so a header there would be silently ignored.
	if d.URL != nil && d.ProxyProtoVersion != ProxyProtoNone && d.URL.Scheme != "tcp" && d.URL.Scheme != "tls" {
		r.failf(p.key("proxy-proto-version"), "applies only to tcp and tls destinations, not %s (the client address is sent in X-Forwarded-For instead)", d.URL.Scheme)
	}
	if d.CAsFile == InsecureSkipVerify {
		d.CAsFile, d.InsecureSkipVerify = "", true
	}
	r.certPair(p, dc.CertFile, dc.KeyFile)
	// With a bad URL it is unknown whether the files apply; read them
	// anyway, so that fixing the URL does not bring new problems up.
	if d.URL == nil || rule.tls {
		r.endpointTLSFiles(p, dc.CAsFile, dc.CertFile, dc.KeyFile)
	}
	if d.URL != nil && rule.file {
		r.fileRoot(p.key("url"), d.FilePath())
	}
	return d
}

func (r *resolver) source(p keyPath, name string, sc SourceConfig, defEnc []e2ee.Encryption) SourceSettings {
	r.endpointName(p, name)
	s := SourceSettings{
		Name:             name,
		Route:            oneOf(r, p.key("route"), sc.Route, netpath.RouteAny, netpath.RouteAny, netpath.RouteDirect, netpath.RouteRelay),
		RelayEncryptions: r.relayEncryptions(p.key("relay-encryptions"), sc.RelayEncryptions, defEnc),
		DialTimeout:      r.duration(p.key("dial-timeout"), sc.DialTimeout, 0, false),
		CertFile:         sc.CertFile,
		KeyFile:          sc.KeyFile,
		CAsFile:          sc.CAsFile,
		LBPolicy: oneOf(r, p.key("lb-policy"), sc.LBPolicy, balance.Default,
			balance.LeastLatency, balance.LeastConns, balance.RoundRobin, balance.Random),
		LBRetry: oneOf(r, p.key("lb-retry"), sc.LBRetry, balance.Never, balance.Count, balance.Timed, balance.All),
	}
	var rule urlRule
	s.URL, rule, _ = r.endpointURL(p.key("url"), sc.URL, sourceSchemes)
	if s.URL != nil {
		for _, kv := range [][2]string{{"cas-file", sc.CAsFile}, {"cert-file", sc.CertFile}, {"key-file", sc.KeyFile}} {
			r.appliesTo(p.key(kv[0]), kv[1] != "", rule.tls, "tls, https and wss sources", s.URL.Scheme)
		}
	}
	r.appliesTo(p.key("lb-retry-max"), sc.LBRetryMax != 0, sc.LBRetry == string(balance.Count) || sc.LBRetry == string(balance.Timed),
		`lb-retry "count" and "timed"`, retryName(sc.LBRetry))
	if s.URL != nil && rule.tls && (sc.CertFile == "" || sc.KeyFile == "") {
		r.failf(p, "a %s source needs cert-file and key-file for its server certificate", s.URL.Scheme)
	} else {
		r.certPair(p, sc.CertFile, sc.KeyFile)
	}
	if sc.CAsFile == InsecureSkipVerify {
		r.failf(p.key("cas-file"), "%q only applies to destinations; for a source, cas-file names the CAs for client certificates", InsecureSkipVerify)
	}
	if s.URL == nil || rule.tls {
		r.endpointTLSFiles(p, sc.CAsFile, sc.CertFile, sc.KeyFile)
	}

	s.AllowedOrigins = r.allowedOrigins(p.key("allowed-origins"), sc.AllowedOrigins, s.URL)
	s.AllowedHosts = r.allowedHosts(p.key("allowed-hosts"), sc.AllowedHosts, s.URL)

	if sc.LBRetryMax < 0 {
		r.failf(p.key("lb-retry-max"), "invalid value %d: must not be negative", sc.LBRetryMax)
	}
	switch s.LBRetry {
	case balance.Count:
		s.LBRetryMax = cmp.Or(max(sc.LBRetryMax, 0), balance.DefaultCount)
	case balance.Timed:
		s.LBRetryMax = cmp.Or(max(sc.LBRetryMax, 0), balance.DefaultTimeMs)
	}
	return s
}

// allowedOrigins checks an allowed-origins list: it only means something
// for ws/wss sources (the only ones that apply a browser origin policy), and
// each entry must be a bare origin so that the exact comparison made per
// request can match at all.
func (r *resolver) allowedOrigins(p keyPath, list []string, u *url.URL) []string {
	if len(list) == 0 {
		return nil
	}
	if u != nil && u.Scheme != "ws" && u.Scheme != "wss" {
		r.failf(p, "only applies to ws and wss sources (this source is %s); other sources do not check origins", u.Scheme)
		return nil
	}
	return r.normalizeEach(p, list, "origin", NormalizeOrigin)
}

// NormalizeOrigin checks that o is "*" or a web origin (http or https
// scheme, a host, optionally a port, nothing else) and returns it in the
// lower-case form "scheme://host[:port]" that browsers send in the Origin
// header.
func NormalizeOrigin(o string) (string, error) {
	if o == "*" {
		return o, nil
	}
	u, err := url.Parse(o)
	if err != nil {
		return "", err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("scheme must be http or https, like https://app.example.com")
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("host is required, like https://app.example.com")
	case u.User != nil:
		return "", fmt.Errorf("an origin has no user info")
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || strings.HasSuffix(o, "#"):
		return "", fmt.Errorf("an origin has no path, query or fragment")
	case strings.HasSuffix(u.Host, ":"):
		return "", fmt.Errorf("empty port")
	}
	if port := u.Port(); port != "" {
		if err := checkPort(port, false); err != nil {
			return "", err
		}
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// retryName names a source's lb-retry for messages.
func retryName(r string) string {
	if r == "" {
		return "a source without lb-retry"
	}
	return fmt.Sprintf("lb-retry %q", r)
}

// appliesTo refuses a key that is set where it would not be applied, so
// that nothing in a config is silently ignored: what is the set of
// endpoints it applies to, this what the endpoint is.
func (r *resolver) appliesTo(p keyPath, set, applies bool, what, this string) {
	if set && !applies {
		r.failf(p, "applies only to %s, not %s: it would be ignored", what, this)
	}
}

// certPair checks that a client/server certificate is given completely.
func (r *resolver) certPair(p keyPath, certFile, keyFile string) {
	switch {
	case certFile != "" && keyFile == "":
		r.failf(p.key("key-file"), "required when cert-file is set")
	case certFile == "" && keyFile != "":
		r.failf(p.key("cert-file"), "required when key-file is set")
	}
}
