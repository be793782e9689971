package config

import (
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyPath is a full TOML key such as client.destinations.web.url or
// server.ingress[1].cert-file. Each element is already formatted: table keys
// are quoted when they are not bare keys, and array positions are stored as
// "[i]". Keeping elements separate lets origin lookups walk up to parents.
type keyPath []string

// key returns p extended with the table key name.
func (p keyPath) key(name string) keyPath {
	return append(slices.Clip(p), toml.Key{name}.String())
}

// index returns p extended with an array position.
func (p keyPath) index(i int) keyPath {
	return append(slices.Clip(p), "["+strconv.Itoa(i)+"]")
}

// String renders the key the way a user would look for it in a file.
func (p keyPath) String() string {
	var b strings.Builder
	for i, el := range p {
		if i > 0 && !strings.HasPrefix(el, "[") {
			b.WriteByte('.')
		}
		b.WriteString(el)
	}
	return b.String()
}
