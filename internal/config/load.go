package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// maxFileSize bounds every file this package reads (configs, tokens,
// certificates). Real files are tiny; the bound keeps a mistaken path such as
// /dev/zero from exhausting memory.
const maxFileSize = 8 << 20

// Load reads the given TOML files and merges them in order: a later file
// overrides values of an earlier one (see Config.Merge for the exact rules).
// Each file's path is recorded as the origin of the values it set. Problems
// in all files are reported together. A file that cannot be read or parsed
// at all makes the returned Config nil; one with only wrong keys (unknown,
// or of the wrong type) still contributes its good keys, so that the
// Config returned beside the error can be validated for everything else
// (connet check reports all problems at once). Load with no paths returns
// an empty Config.
func Load(paths ...string) (*Config, error) {
	cfg := &Config{}
	var errs []error
	whole := true
	for _, path := range paths {
		data, err := readFile(path)
		if err != nil {
			errs = append(errs, &Error{Origin: path, Reason: "cannot read config file", Err: err})
			whole = false
			continue
		}
		fileCfg, err := Parse(data, path)
		if err != nil {
			errs = append(errs, err)
		}
		if fileCfg == nil {
			whole = false
			continue
		}
		cfg.Merge(fileCfg, path)
	}
	if !whole {
		cfg = nil
	}
	return cfg, errors.Join(errs...)
}

// Parse decodes one TOML document strictly. origin labels the document in
// errors and is recorded as the origin of every value it sets (it is usually
// the file name). Unknown keys, values of the wrong type and syntax errors
// are all reported, each as an *Error. After a syntax error the Config is
// nil; after wrong keys it holds the document without them.
func Parse(data []byte, origin string) (*Config, error) {
	// First pass: decode generically to find every unknown key and type
	// mismatch with its exact, full key, and drop them.
	var generic map[string]any
	if _, err := toml.Decode(string(data), &generic); err != nil {
		return nil, syntaxError(origin, data, err)
	}
	var errs []error
	checkTable(generic, reflect.TypeFor[Config](), nil, func(p keyPath, reason string) {
		errs = append(errs, &Error{Origin: origin, Key: p.String(), Reason: reason})
	})

	// Second pass: let the toml package fill the model from what the first
	// pass kept, written out again (the toml package decodes only text).
	// The first pass has vetted it, so errors here indicate a disagreement
	// between checkTable and the toml package; report them anyway rather
	// than trusting either side blindly.
	var vetted bytes.Buffer
	if err := toml.NewEncoder(&vetted).Encode(generic); err != nil {
		return nil, errors.Join(append(errs, &Error{Origin: origin, Reason: "cannot decode", Err: err})...)
	}
	var raw Config
	md, err := toml.Decode(vetted.String(), &raw)
	if err != nil {
		return nil, errors.Join(append(errs, &Error{Origin: origin, Reason: "cannot decode", Err: err})...)
	}
	for _, k := range md.Undecoded() {
		errs = append(errs, &Error{Origin: origin, Key: keyPath(quoteKey(k)).String(), Reason: "unknown key"})
	}

	cfg := &Config{}
	cfg.Merge(&raw, origin)
	return cfg, errors.Join(errs...)
}

// syntaxError converts a toml parse failure into an *Error carrying the
// line, the column and the text of the line, for Excerpt.
func syntaxError(origin string, data []byte, err error) error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return &Error{Origin: origin, Reason: "invalid TOML", Err: err}
	}
	e := &Error{Origin: origin, Line: pe.Position.Line, Column: pe.Position.Col, Reason: "invalid TOML", Err: parseMessage{pe}}
	e.Source = strings.TrimSuffix(lineOf(data, e.Line), "\r")
	return e
}

// lineOf returns the n-th line (1-based) of data without its newline, or
// "" if there is none (the empty line after a final newline, where an
// unterminated construct is reported).
func lineOf(data []byte, n int) string {
	i := 0
	for line := range strings.Lines(string(data)) {
		if i++; i == n {
			return strings.TrimSuffix(line, "\n")
		}
	}
	return ""
}

// parseMessage shows only the message of a toml.ParseError, because its
// own Error text repeats the line that *Error already prints, while keeping
// the full ParseError reachable through errors.As.
type parseMessage struct{ pe toml.ParseError }

func (m parseMessage) Error() string { return m.pe.Message }
func (m parseMessage) Unwrap() error { return m.pe }

// quoteKey formats each part of a toml.Key as it would appear in a file.
func quoteKey(k toml.Key) []string {
	out := make([]string, len(k))
	for i, part := range k {
		out[i] = toml.Key{part}.String()
	}
	return out
}

// readFile reads a whole file, refusing anything larger than maxFileSize.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: file is larger than %d bytes", path, maxFileSize)
	}
	return data, nil
}
