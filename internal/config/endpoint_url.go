package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// urlRule describes what an endpoint URL of one scheme must look like. The
// scheme tables below are the one place to touch when connet learns a new
// kind of endpoint: add an entry here and the implementation elsewhere.
type urlRule struct {
	// network: the URL names a network address in its host part.
	network bool
	// hostRequired: the host may not be empty (an empty host means "all
	// interfaces" for listeners and "this machine" for tcp/tls dialing, but
	// an HTTP client cannot send a request without one).
	hostRequired bool
	// portRequired: the scheme has no default port.
	portRequired bool
	// pathAllowed: path, query and fragment are meaningful.
	pathAllowed bool
	// tls: the endpoint speaks TLS, so cas-file/cert-file/key-file apply.
	tls bool
	// file: the URL is a file path served over HTTP.
	file bool
}

// destinationSchemes are the URL schemes a destination can connect to.
var destinationSchemes = map[string]urlRule{
	"tcp":   {network: true, portRequired: true},
	"tls":   {network: true, portRequired: true, tls: true},
	"http":  {network: true, hostRequired: true, pathAllowed: true},
	"https": {network: true, hostRequired: true, pathAllowed: true, tls: true},
	"file":  {file: true, pathAllowed: true},
}

// sourceSchemes are the URL schemes a source can listen on.
var sourceSchemes = map[string]urlRule{
	"tcp":   {network: true, portRequired: true},
	"tls":   {network: true, portRequired: true, tls: true},
	"http":  {network: true, pathAllowed: true},
	"https": {network: true, pathAllowed: true, tls: true},
	"ws":    {network: true, pathAllowed: true},
	"wss":   {network: true, pathAllowed: true, tls: true},
}

// endpointURL parses and checks an endpoint url against the scheme table.
func (r *resolver) endpointURL(p keyPath, raw string, schemes map[string]urlRule) (*url.URL, urlRule, bool) {
	if raw == "" {
		r.failf(p, "required")
		return nil, urlRule{}, false
	}
	u, err := url.Parse(raw)
	if err != nil {
		r.fail(p, fmt.Sprintf("invalid URL %q", raw), err)
		return nil, urlRule{}, false
	}
	rule, ok := schemes[u.Scheme]
	if !ok {
		hint := ""
		if u.Scheme == "" || u.Opaque != "" && u.Scheme != "file" {
			hint = " (a scheme is required, e.g. tcp://localhost:3000)"
		}
		r.failf(p, "invalid URL %q: unsupported scheme %q, must be one of %s%s", raw, u.Scheme, schemeList(schemes), hint)
		return nil, urlRule{}, false
	}
	if err := rule.check(u); err != nil {
		r.fail(p, fmt.Sprintf("invalid URL %q", raw), err)
		return nil, urlRule{}, false
	}
	return u, rule, true
}

func (rule urlRule) check(u *url.URL) error {
	if u.User != nil {
		return fmt.Errorf("user info is not supported")
	}
	if !rule.pathAllowed && (u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "") {
		return fmt.Errorf("%s URLs take no path, query or fragment", u.Scheme)
	}
	switch {
	case rule.file:
		if u.Host != "" && u.Host != "localhost" {
			return fmt.Errorf("unexpected host %q: use file:relative/path or file:///absolute/path", u.Host)
		}
		if filePath(u) == "" {
			return fmt.Errorf("file path is required")
		}
	case rule.network:
		if u.Opaque != "" {
			return fmt.Errorf("expected %s://host:port", u.Scheme)
		}
		if rule.hostRequired && u.Hostname() == "" {
			return fmt.Errorf("host is required")
		}
		port := u.Port()
		if port == "" {
			if rule.portRequired {
				return fmt.Errorf("port is required")
			}
			if strings.HasSuffix(u.Host, ":") {
				return fmt.Errorf("empty port")
			}
			return nil
		}
		return checkPort(port, false)
	}
	return nil
}

// filePath is the path of a file: URL, whether written absolute
// (file:///srv/www) or relative (file:./www, which url.Parse keeps opaque).
func filePath(u *url.URL) string {
	if u.Opaque != "" {
		if p, err := url.PathUnescape(u.Opaque); err == nil {
			return p
		}
		return u.Opaque
	}
	return u.Path
}

func schemeList(schemes map[string]urlRule) string {
	names := make([]string, 0, len(schemes))
	for s := range schemes {
		names = append(names, s)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
