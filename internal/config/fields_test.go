package config

import (
	"reflect"
	"testing"
)

// TestModelFieldsAreTagged guards the model: an exported field without a
// toml tag would be silently skipped by strict decoding and merging, and a
// supersedes tag must name a sibling key.
func TestModelFieldsAreTagged(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		names := map[string]bool{}
		for _, f := range tomlFields(typ) {
			names[f.name] = true
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Tag.Get("toml") == "" {
				t.Errorf("%s.%s has no toml tag", typ.Name(), f.Name)
			}
			if alt := f.Tag.Get("supersedes"); alt != "" && !names[alt] {
				t.Errorf("%s.%s supersedes unknown key %q", typ.Name(), f.Name, alt)
			}
			ft := f.Type
			for ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map {
				ft = ft.Elem()
			}
			walk(ft)
		}
	}
	walk(reflect.TypeFor[Config]())
	if len(seen) < 10 {
		t.Fatalf("walked only %d model types", len(seen))
	}
}
