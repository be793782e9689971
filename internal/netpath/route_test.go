package netpath

import "testing"

func TestKinds(t *testing.T) {
	for _, c := range []struct {
		k               Kind
		direct, relayed bool
	}{
		{DirectOutgoing, true, false},
		{DirectIncoming, true, false},
		{Relay, false, true},
		{RelayTCP, false, true},
		{Kind("other"), false, false},
	} {
		if c.k.Direct() != c.direct || c.k.Relayed() != c.relayed {
			t.Errorf("%s: Direct %v Relayed %v, want %v %v", c.k, c.k.Direct(), c.k.Relayed(), c.direct, c.relayed)
		}
	}
}

func TestRoute(t *testing.T) {
	kinds := []Kind{DirectOutgoing, DirectIncoming, Relay, RelayTCP}
	for _, c := range []struct {
		spelling     string
		route        Route
		allows       []bool // for each of kinds
		allowsDirect bool
	}{
		{"", RouteAny, []bool{true, true, true, true}, true},
		{"any", RouteAny, []bool{true, true, true, true}, true},
		{"direct", RouteDirect, []bool{true, true, false, false}, true},
		{"relay", RouteRelay, []bool{false, false, true, true}, false},
	} {
		r, err := ParseRoute(c.spelling)
		if err != nil || r != c.route {
			t.Errorf("ParseRoute(%q) = %q, %v, want %q", c.spelling, r, err, c.route)
			continue
		}
		for i, k := range kinds {
			if got := r.Allows(k); got != c.allows[i] {
				t.Errorf("%q allows %s: %v, want %v", r, k, got, c.allows[i])
			}
		}
		if got := r.AllowsDirect(); got != c.allowsDirect {
			t.Errorf("%q AllowsDirect: %v, want %v", r, got, c.allowsDirect)
		}
	}
	for _, bad := range []string{"Direct", "relayed", "both", " any"} {
		if r, err := ParseRoute(bad); err == nil {
			t.Errorf("ParseRoute(%q) = %q, want an error", bad, r)
		}
	}
}
