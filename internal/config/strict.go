package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// checkTable compares a generically decoded TOML table against the model
// type t and reports every key that the model does not have and every value
// whose TOML type does not fit. It exists because the toml package stops at
// the first type mismatch, reports it without a structured key, and matches
// keys case-insensitively; connet wants all problems, with exact keys.
//
// Each reported key is deleted from data, so that what remains can still be
// decoded and validated: a user sees a bad value elsewhere in the same run
// as an unknown key, instead of one round of fixes per kind of mistake.
func checkTable(data map[string]any, t reflect.Type, p keyPath, report func(keyPath, string)) {
	fields := tomlFields(t)
	byName := make(map[string]tomlField, len(fields))
	for _, f := range fields {
		byName[f.name] = f
	}
	for _, k := range sortedKeys(data) {
		kp := p.key(k)
		f, ok := byName[k]
		if !ok {
			report(kp, unknownKeyReason(k, fields))
			delete(data, k)
			continue
		}
		if !checkValue(data[k], t.Field(f.index).Type, kp, report) {
			delete(data, k)
		}
	}
}

// checkValue checks one TOML value against the Go type that will hold it,
// and tells whether the value can be kept: a table with bad keys keeps the
// good ones (checkTable deletes the rest), anything else with a problem is
// dropped whole. An array is dropped whole too, even for one bad element:
// dropping only the element would shift the positions after it, and token
// restrictions pair with tokens by position. Only the kinds used in
// model.go are supported.
func checkValue(v any, t reflect.Type, p keyPath, report func(keyPath, string)) bool {
	switch t.Kind() {
	case reflect.String:
		if _, ok := v.(string); !ok {
			report(p, wrongType("string", v))
			return false
		}
	case reflect.Int:
		if _, ok := v.(int64); !ok {
			report(p, wrongType("integer", v))
			return false
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			report(p, wrongType("boolean", v))
			return false
		}
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			report(p, wrongType("table", v))
			return false
		}
		checkTable(m, t, p, report)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			report(p, wrongType("table", v))
			return false
		}
		for _, k := range sortedKeys(m) {
			if !checkValue(m[k], t.Elem(), p.key(k), report) {
				delete(m, k)
			}
		}
	case reflect.Slice:
		items, ok := arrayItems(v)
		if !ok {
			report(p, wrongType("array", v))
			return false
		}
		keep := true
		for i, item := range items {
			keep = checkValue(item, t.Elem(), p.index(i), report) && keep
		}
		return keep
	default:
		// A model field of an unsupported kind is a programming error; make
		// it visible instead of silently accepting anything.
		report(p, fmt.Sprintf("internal error: unsupported model type %s", t))
		return false
	}
	return true
}

// arrayItems returns the elements of a TOML array. The toml package yields
// []map[string]any for arrays of tables and []any for everything else.
func arrayItems(v any) ([]any, bool) {
	switch a := v.(type) {
	case []any:
		return a, true
	case []map[string]any:
		items := make([]any, len(a))
		for i := range a {
			items[i] = a[i]
		}
		return items, true
	}
	return nil, false
}

func wrongType(want string, got any) string {
	return fmt.Sprintf("expected %s, got %s", want, tomlTypeName(got))
}

// tomlTypeName names a decoded value in TOML's terms, which is what a user
// editing the file thinks in.
func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case time.Time:
		return "datetime"
	case []any, []map[string]any:
		return "array"
	case map[string]any:
		return "table"
	}
	return fmt.Sprintf("%T", v)
}

// unknownKeyReason explains an unknown key, pointing at the intended key
// when only letter case differs (TOML keys are case-sensitive).
func unknownKeyReason(k string, fields []tomlField) string {
	for _, f := range fields {
		if strings.EqualFold(f.name, k) {
			return fmt.Sprintf("unknown key (did you mean %q?)", f.name)
		}
	}
	return "unknown key"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
