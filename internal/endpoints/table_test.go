package endpoints

import (
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/p2pconnet/connet/internal/e2ee"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// The table starts goroutines to serve peers' streams.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testTable(t *testing.T, announced *[]*pb.Endpoint) *Table {
	t.Helper()
	return New(Config{
		Logger:   slog.New(slog.DiscardHandler),
		Metrics:  metrics.NewClient(metrics.NewRegistry("test"), func() bool { return true }, func() int { return 0 }),
		Announce: func(eps []*pb.Endpoint) { *announced = eps },
	})
}

// TestMismatchesForgetPeersThatLeft: the pairings warned about are keyed
// by peer and must not outlive the peer's announcement.
func TestMismatchesForgetPeersThatLeft(t *testing.T) {
	var announced []*pb.Endpoint
	tab := testTable(t, &announced)
	if _, err := tab.Add(peer.EndpointKey{Name: "web", Role: peer.Destination}, Options{Route: netpath.RouteAny, Encryptions: []e2ee.Encryption{e2ee.TLS}}); err != nil {
		t.Fatal(err)
	}
	// Each peer's source allows only "none": no encryption in common.
	src := peer.Endpoint{Name: "web", Role: peer.Source, Route: netpath.RouteAny, RelayEncryptions: []string{"none"}}
	infos := []peer.Info{{ID: identity.ID{1}, Endpoints: []peer.Endpoint{src}}, {ID: identity.ID{2}, Endpoints: []peer.Endpoint{src}}}
	tab.Apply(infos, nil)
	if len(tab.mismatches) != 2 {
		t.Fatalf("mismatches %v, want both peers", tab.mismatches)
	}
	tab.Apply(infos[1:], nil)
	if len(tab.mismatches) != 1 || !tab.mismatches[mismatchKey{identity.ID{2}.String(), "web"}] {
		t.Fatalf("mismatches %v, want only the peer still announced", tab.mismatches)
	}
	tab.Apply(nil, nil)
	if len(tab.mismatches) != 0 {
		t.Fatalf("mismatches %v after every peer left", tab.mismatches)
	}
}

// TestOneLookupForEveryRole: the table keeps a destination and a source of
// the same name apart, announces both sorted by name then role, pairs each
// with the peer endpoint of the opposite role, and forgets a closed one.
func TestOneLookupForEveryRole(t *testing.T) {
	var announced []*pb.Endpoint
	tab := testTable(t, &announced)
	add := func(name string, role peer.Role, route netpath.Route) *Endpoint {
		t.Helper()
		e, err := tab.Add(peer.EndpointKey{Name: name, Role: role}, Options{Route: route, Encryptions: []e2ee.Encryption{e2ee.None}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	dst := add("web", peer.Destination, netpath.RouteRelay)
	add("web", peer.Source, netpath.RouteDirect)
	add("api", peer.Source, netpath.RouteAny)
	if _, err := tab.Add(peer.EndpointKey{Name: "web", Role: peer.Source}, Options{}); err != ErrExists {
		t.Fatalf("a second source web: %v, want ErrExists", err)
	}
	var got []string
	for _, e := range announced {
		got = append(got, e.GetName()+"/"+e.GetRole().String())
	}
	if want := "[api/ROLE_SOURCE web/ROLE_DESTINATION web/ROLE_SOURCE]"; "["+strings.Join(got, " ")+"]" != want {
		t.Fatalf("announced %v, want %s", got, want)
	}
	// A peer's destination web pairs with our source web (direct only).
	st := peer.State{Info: peer.Info{Endpoints: []peer.Endpoint{{Name: "web", Role: peer.Destination, Route: netpath.RouteAny}}}}
	if !tab.AllowDirect(st) {
		t.Fatal("our direct source and the peer's destination do not allow direct")
	}
	// A peer's source web pairs with our destination web (relay only).
	st.Info.Endpoints[0].Role = peer.Source
	if tab.AllowDirect(st) {
		t.Fatal("our relay-only destination allowed direct")
	}
	dst.Close()
	if tab.Local("web", peer.Destination) != nil || len(announced) != 2 {
		t.Fatalf("closed destination still in the table (announced %v)", announced)
	}
	tab.Close()
	if _, err := tab.Add(peer.EndpointKey{Name: "db", Role: peer.Source}, Options{}); err != ErrClosed {
		t.Fatalf("add after close: %v, want ErrClosed", err)
	}
}
