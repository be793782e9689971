package config

import (
	"reflect"
	"strings"
)

// tomlField is one struct field that takes part in decoding and merging.
type tomlField struct {
	index      int
	name       string // key in the file
	supersedes string // sibling key this one replaces, see model.go
}

// tomlFields lists the fields of a model struct that carry a toml tag.
// Strict decoding and merging both walk the model through this one function,
// so the tags in model.go are the single source of truth for key names.
func tomlFields(t reflect.Type) []tomlField {
	var out []tomlField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, tomlField{index: i, name: name, supersedes: f.Tag.Get("supersedes")})
	}
	return out
}
