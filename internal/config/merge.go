package config

import (
	"reflect"
	"strings"
)

// Merge overlays the values set in overlay onto c and records origin (a file
// path or a label such as "flag --dst-url") as where they came from. It is
// how Load combines files, and how the command line layer applies flags on
// top of files, which is why its rules favour "set beats unset":
//
//   - strings, integers and arrays are replaced when the overlay's value is
//     non-empty (non-zero); an empty overlay value never erases anything;
//   - arrays of tables ([[server.ingress]] etc.) count as one value and are
//     replaced as a whole;
//   - tables (including client.destinations and client.sources) are merged
//     key by key and field by field, so a flag can change one field of one
//     destination defined in a file;
//   - setting one of an alternative pair (token / token-file, tokens /
//     tokens-file, ...) drops the other one inherited from c, so the newer
//     layer wins regardless of which form each layer used.
//
// Values the overlay already knows the origin of (because it came from Load
// or Parse) keep that origin; origin labels the rest. To name individual
// flags in errors, merge one overlay per flag.
func (c *Config) Merge(overlay *Config, origin string) {
	if overlay == nil {
		return
	}
	if c.origins == nil {
		c.origins = map[string]string{}
	}
	m := merger{origin: origin, origins: c.origins, from: overlay}
	m.value(reflect.ValueOf(c).Elem(), reflect.ValueOf(overlay).Elem(), nil)
}

// Origin reports which file or flag set key (as rendered in errors, e.g.
// client.destinations.web.url or server.ingress[0].cert-file). Keys inside
// arrays, and keys that were never set but whose enclosing table was, report
// the origin of the nearest enclosing value that was recorded. It returns ""
// if nothing is known.
func (c *Config) Origin(key string) string {
	return c.originOf(parseKeyForLookup(key))
}

func (c *Config) originOf(p keyPath) string {
	for n := len(p); n > 0; n-- {
		if o, ok := c.origins[p[:n].String()]; ok {
			return o
		}
	}
	return ""
}

// parseKeyForLookup splits a rendered key back into elements. It only has to
// be good enough for Origin lookups: quoted elements are kept verbatim,
// which matches how keyPath stores them.
func parseKeyForLookup(key string) keyPath {
	var p keyPath
	var cur strings.Builder
	inQuote, escaped := false, false
	flush := func() {
		if cur.Len() > 0 {
			p = append(p, cur.String())
			cur.Reset()
		}
	}
	for _, r := range key {
		switch {
		case inQuote:
			cur.WriteRune(r)
			if escaped {
				escaped = false
			} else if r == '\\' {
				escaped = true
			} else if r == '"' {
				inQuote = false
			}
		case r == '"':
			inQuote = true
			cur.WriteRune(r)
		case r == '.':
			flush()
		case r == '[':
			flush()
			cur.WriteRune(r)
		case r == ']':
			cur.WriteRune(r)
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return p
}

// merger carries the state of one Merge call through the reflection walk.
// origins may be nil, which turns the walk into a plain deep copy.
type merger struct {
	origin  string
	origins map[string]string
	from    *Config // the overlay, for origins it already recorded
}

func (m merger) record(p keyPath) {
	if m.origins == nil {
		return
	}
	o := m.origin
	if m.from != nil {
		if known := m.from.originOf(p); known != "" {
			o = known
		}
	}
	m.origins[p.String()] = o
}

// forget drops the origins recorded for p and everything below it, used
// when a value is replaced or cleared wholesale.
func (m merger) forget(p keyPath) {
	if m.origins == nil {
		return
	}
	prefix := p.String()
	for k := range m.origins {
		if k == prefix || strings.HasPrefix(k, prefix+".") || strings.HasPrefix(k, prefix+"[") {
			delete(m.origins, k)
		}
	}
}

func (m merger) value(dst, src reflect.Value, p keyPath) {
	switch src.Kind() {
	case reflect.Struct:
		m.structFields(dst, src, p)
	case reflect.Map:
		if src.Len() == 0 {
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.MakeMap(src.Type()))
		}
		keys := src.MapKeys()
		for _, k := range keys {
			kp := p.key(k.String())
			elem := reflect.New(src.Type().Elem()).Elem()
			if existing := dst.MapIndex(k); existing.IsValid() {
				elem.Set(existing)
			} else {
				// Remember who declared the table, so that errors about
				// its missing keys can still point at a file.
				m.record(kp)
			}
			m.value(elem, src.MapIndex(k), kp)
			dst.SetMapIndex(k, elem)
		}
	case reflect.Slice:
		if src.Len() == 0 {
			return
		}
		m.forget(p)
		out := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			// Deep copy so later merges never alias the overlay's data.
			merger{}.value(out.Index(i), src.Index(i), nil)
		}
		dst.Set(out)
		m.record(p)
	default:
		if src.IsZero() {
			return
		}
		dst.Set(src)
		m.record(p)
	}
}

func (m merger) structFields(dst, src reflect.Value, p keyPath) {
	fields := tomlFields(src.Type())
	for _, f := range fields {
		if f.supersedes == "" || src.Field(f.index).IsZero() {
			continue
		}
		for _, alt := range fields {
			if alt.name == f.supersedes && src.Field(alt.index).IsZero() {
				target := dst.Field(alt.index)
				target.Set(reflect.Zero(target.Type()))
				m.forget(p.key(alt.name))
			}
		}
	}
	for _, f := range fields {
		m.value(dst.Field(f.index), src.Field(f.index), p.key(f.name))
	}
}
