package connet

import (
	"log/slog"
	"testing"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/peer"
)

// TestMismatchesForgetPeersThatLeft: the pairings warned about are keyed
// by peer and must not outlive the peer's announcement.
func TestMismatchesForgetPeersThatLeft(t *testing.T) {
	c := &Client{
		cfg: &clientConfig{logger: slog.New(slog.DiscardHandler)},
		destinations: map[string]*Destination{
			"web": {cfg: DestinationConfig{Name: "web", Route: RouteAny, RelayEncryptions: []RelayEncryption{TLSEncryption}}},
		},
		sources:    map[string]*Source{},
		mismatches: map[mismatchKey]bool{},
	}
	// Each peer's source allows only "none": no encryption in common.
	src := peer.Endpoint{Name: "web", Role: peer.Source, Route: RouteAny, RelayEncryptions: []string{"none"}}
	infos := []peer.Info{{ID: identity.ID{1}, Endpoints: []peer.Endpoint{src}}, {ID: identity.ID{2}, Endpoints: []peer.Endpoint{src}}}
	c.warnMismatches(infos)
	if len(c.mismatches) != 2 {
		t.Fatalf("mismatches %v, want both peers", c.mismatches)
	}
	c.warnMismatches(infos[1:])
	if len(c.mismatches) != 1 || !c.mismatches[mismatchKey{identity.ID{2}.String(), "web"}] {
		t.Fatalf("mismatches %v, want only the peer still announced", c.mismatches)
	}
	c.warnMismatches(nil)
	if len(c.mismatches) != 0 {
		t.Fatalf("mismatches %v after every peer left", c.mismatches)
	}
}
