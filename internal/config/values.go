package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/p2pconnet/connet/internal/e2ee"
)

// This file holds the small parsers shared by all roles. Each one takes the
// key it is parsing so that its errors name it, returns a usable value even
// on failure (the problem is recorded on the resolver), and applies the
// default when the raw value is empty.

// duration parses a Go duration ("5s", "1m30s"). Timeouts that have no
// "disabled" meaning must be positive; others may be zero.
func (r *resolver) duration(p keyPath, raw string, def time.Duration, mustBePositive bool) time.Duration {
	if raw == "" {
		return def
	}
	d, err := time.ParseDuration(raw)
	switch {
	case err != nil:
		r.fail(p, fmt.Sprintf("invalid duration %q", raw), err)
		return def
	case d < 0:
		r.failf(p, "invalid duration %q: must not be negative", raw)
		return def
	case d == 0 && mustBePositive:
		r.failf(p, "invalid duration %q: must be greater than zero", raw)
		return def
	}
	return d
}

// oneOf checks that raw is one of the allowed values, so typos in enums are
// caught at start-up instead of silently falling back to a default.
func oneOf[T ~string](r *resolver, p keyPath, raw string, def T, allowed ...T) T {
	if raw == "" {
		return def
	}
	if slices.Contains(allowed, T(raw)) {
		return T(raw)
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = strconv.Quote(string(a))
	}
	r.failf(p, "invalid value %q: must be one of %s", raw, strings.Join(names, ", "))
	return def
}

// listenAddr validates a "[host]:port" address to listen on. The host may
// be empty (all interfaces) and the port may be 0 (pick any).
func (r *resolver) listenAddr(p keyPath, raw, def string) string {
	if raw == "" {
		return def
	}
	if _, port, err := net.SplitHostPort(raw); err != nil {
		r.fail(p, fmt.Sprintf("invalid address %q: expected [host]:port", raw), err)
	} else if err := checkPort(port, true); err != nil {
		r.fail(p, fmt.Sprintf("invalid address %q", raw), err)
	}
	return raw
}

// dialAddr validates a "host:port" address to connect to and returns it
// together with its host, which serves as the default TLS server name.
func (r *resolver) dialAddr(p keyPath, raw, def string) (addr, host string) {
	if raw == "" {
		raw = def
	}
	host, port, err := net.SplitHostPort(raw)
	switch {
	case err != nil:
		r.fail(p, fmt.Sprintf("invalid address %q: expected host:port", raw), err)
	case host == "":
		r.failf(p, "invalid address %q: host is required", raw)
	default:
		if err := checkPort(port, false); err != nil {
			r.fail(p, fmt.Sprintf("invalid address %q", raw), err)
		}
	}
	return raw, host
}

// checkPort accepts only numeric ports: service names would make the
// meaning of a config depend on the machine's /etc/services.
func checkPort(port string, allowZero bool) error {
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("invalid port %q: must be a number between 0 and 65535", port)
	}
	if n == 0 && !allowZero {
		return errors.New("port 0 is not allowed here")
	}
	return nil
}

// relayEncryptions parses a relay-encryptions list; an empty list means
// def. Duplicates are rejected because they usually hide a typo elsewhere.
func (r *resolver) relayEncryptions(p keyPath, raw []string, def []e2ee.Encryption) []e2ee.Encryption {
	if len(raw) == 0 {
		return slices.Clone(def)
	}
	out := make([]e2ee.Encryption, 0, len(raw))
	for i, v := range raw {
		e := oneOf(r, p.index(i), v, "", e2ee.None, e2ee.TLS, e2ee.DHXCP)
		switch {
		case v == "":
			r.failf(p.index(i), "empty value: must be one of \"none\", \"tls\", \"dhxcp\"")
		case e == "":
			// already reported by oneOf
		case slices.Contains(out, e):
			r.failf(p.index(i), "duplicate value %q", v)
		default:
			out = append(out, e)
		}
	}
	return out
}

// secret resolves a single secret given inline or via a file, where the
// file wins when both are set in the same layer (see Merge for layers).
// The file contents are trimmed, because editors and `echo` add newlines.
func (r *resolver) secret(inlineKey, fileKey keyPath, inline, file string) string {
	if file == "" {
		return inline
	}
	data, err := r.readFile(file)
	if err != nil {
		r.fail(fileKey, "cannot read file", err)
		return ""
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		r.failf(fileKey, "file %q is empty", file)
	}
	return v
}

// tokenList resolves a list of tokens given inline or via a file with one
// token per line (blank lines and surrounding whitespace ignored); the file
// wins when both are set in the same layer. A file without tokens is an
// error; an empty inline list is left for the caller to judge. Duplicates
// are rejected because token restrictions are matched to tokens by position.
func (r *resolver) tokenList(listKey, fileKey keyPath, list []string, file string) []string {
	var tokens []string
	var keys []keyPath // where each token came from, for errors
	var where []string // extra location detail, for errors
	if file != "" {
		data, err := r.readFile(file)
		if err != nil {
			r.fail(fileKey, "cannot read file", err)
			return nil
		}
		lineNo := 0
		for line := range strings.Lines(string(data)) {
			lineNo++
			if t := strings.TrimSpace(line); t != "" {
				tokens = append(tokens, t)
				keys = append(keys, fileKey)
				where = append(where, fmt.Sprintf(" on line %d of %q", lineNo, file))
			}
		}
		if len(tokens) == 0 {
			r.failf(fileKey, "no tokens in %q", file)
		}
	} else {
		for i, t := range list {
			if t == "" {
				r.failf(listKey.index(i), "empty token")
				continue
			}
			tokens = append(tokens, t)
			keys = append(keys, listKey.index(i))
			where = append(where, "")
		}
	}
	seen := make(map[string]bool, len(tokens))
	for i, t := range tokens {
		if seen[t] {
			r.failf(keys[i], "duplicate token%s", where[i])
		}
		seen[t] = true
	}
	return tokens
}
