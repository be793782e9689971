package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

	"github.com/BurntSushi/toml"
)

// maxFileSize bounds every file this package reads (configs, tokens,
// certificates). Real files are tiny; the bound keeps a mistaken path such as
// /dev/zero from exhausting memory.
const maxFileSize = 8 << 20

// Load reads the given TOML files and merges them in order: a later file
// overrides values of an earlier one (see Config.Merge for the exact rules).
// Each file's path is recorded as the origin of the values it set. Problems
// in all files are reported together; the returned Config is nil on error.
// Load with no paths returns an empty Config.
func Load(paths ...string) (*Config, error) {
	cfg := &Config{}
	var errs []error
	for _, path := range paths {
		data, err := readFile(path)
		if err != nil {
			errs = append(errs, &Error{Origin: path, Reason: "cannot read config file", Err: err})
			continue
		}
		fileCfg, err := Parse(data, path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cfg.Merge(fileCfg, path)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

// Parse decodes one TOML document strictly. origin labels the document in
// errors and is recorded as the origin of every value it sets (it is usually
// the file name). Unknown keys, values of the wrong type and syntax errors
// are all reported, each as an *Error.
func Parse(data []byte, origin string) (*Config, error) {
	// First pass: decode generically to find every unknown key and type
	// mismatch with its exact, full key.
	var generic map[string]any
	if _, err := toml.Decode(string(data), &generic); err != nil {
		return nil, syntaxError(origin, err)
	}
	var errs []error
	checkTable(generic, reflect.TypeFor[Config](), nil, func(p keyPath, reason string) {
		errs = append(errs, &Error{Origin: origin, Key: p.String(), Reason: reason})
	})
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	// Second pass: let the toml package fill the model. The first pass has
	// already vetted the document, so errors here indicate a disagreement
	// between checkTable and the toml package; report them anyway rather
	// than trusting either side blindly.
	var raw Config
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return nil, &Error{Origin: origin, Reason: "cannot decode", Err: err}
	}
	for _, k := range md.Undecoded() {
		errs = append(errs, &Error{Origin: origin, Key: keyPath(quoteKey(k)).String(), Reason: "unknown key"})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	cfg := &Config{}
	cfg.Merge(&raw, origin)
	return cfg, nil
}

// syntaxError converts a toml parse failure into an *Error carrying the line.
func syntaxError(origin string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{Origin: origin, Line: pe.Position.Line, Reason: "invalid TOML", Err: parseMessage{pe}}
	}
	return &Error{Origin: origin, Reason: "invalid TOML", Err: err}
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
