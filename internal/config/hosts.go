package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// allowedHosts checks an allowed-hosts list: it only means something for
// the sources that read a Host header (http, https, ws, wss), and each
// entry must be a host name, with or without a port, so that the
// comparison made per request can match at all.
func (r *resolver) allowedHosts(p keyPath, list []string, u *url.URL) []string {
	if len(list) == 0 {
		return nil
	}
	if u != nil {
		switch u.Scheme {
		case "http", "https", "ws", "wss":
		default:
			r.failf(p, "only applies to http, https, ws and wss sources (this source is %s); a %s source sees no host names", u.Scheme, u.Scheme)
			return nil
		}
	}
	return r.normalizeEach(p, list, "host", NormalizeHost)
}

// normalizeEach normalizes the entries of the list at p, reporting each
// one normalize refuses as an invalid what, at its index.
func (r *resolver) normalizeEach(p keyPath, list []string, what string, normalize func(string) (string, error)) []string {
	out := make([]string, 0, len(list))
	for i, v := range list {
		n, err := normalize(v)
		if err != nil {
			r.fail(p.index(i), fmt.Sprintf("invalid %s %q", what, v), err)
			continue
		}
		out = append(out, n)
	}
	return out
}

// NormalizeHost checks that h is "*" or a host name or IP address,
// optionally with a port, as a client puts it in the Host header, and
// returns it as "host" or "host:port" ("[v6]:port") in lower case, without
// a trailing dot, as SplitHost reads it back.
func NormalizeHost(h string) (string, error) {
	if h == "*" {
		return h, nil
	}
	switch {
	case strings.Contains(h, "://") || strings.ContainsAny(h, "/?#@"):
		return "", errors.New("a host name, not a URL: write it like app.example.com or app.example.com:8080")
	case strings.Contains(h, "*"):
		return "", errors.New(`wildcards are not supported: list each name, or "*" alone for any`)
	}
	host, port, err := SplitHost(h)
	if err != nil {
		return "", err
	}
	if _, err := netip.ParseAddr(host); err != nil {
		if err := checkHostName(host); err != nil {
			return "", err
		}
	}
	if port == "" {
		return host, nil
	}
	if err := checkPort(port, false); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, port), nil
}

// checkHostName accepts DNS names: dot-separated labels of letters, digits,
// '-' and '_'.
func checkHostName(name string) error {
	for label := range strings.SplitSeq(name, ".") {
		if label == "" {
			return errors.New("empty label in the host name")
		}
		for _, c := range label {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("character %q is not allowed in a host name", c)
			}
		}
	}
	return nil
}

// SplitHost splits the host[:port] of a Host header or an allowed-hosts
// entry into the host, in lower case, without the brackets of an IPv6
// address or a trailing dot (app.example.com. is app.example.com), and the
// port ("" when there is none). An IPv6 address without brackets is a host
// without a port.
func SplitHost(h string) (host, port string, err error) {
	host, rest := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", "", errors.New("missing ']' after the IPv6 address")
		}
		host, rest = h[1:end], h[end+1:]
		if rest != "" && !strings.HasPrefix(rest, ":") {
			return "", "", fmt.Errorf("unexpected %q after the IPv6 address", rest)
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 && strings.Count(h, ":") == 1 {
		host, rest = h[:i], h[i:]
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	switch {
	case host == "":
		return "", "", errors.New("host is required")
	case rest == ":":
		return "", "", errors.New("empty port")
	}
	return host, strings.TrimPrefix(rest, ":"), nil
}
