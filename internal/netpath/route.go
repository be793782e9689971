package netpath

import "fmt"

// Route restricts which kinds of path an endpoint may use.
type Route string

const (
	RouteAny    Route = "any"
	RouteDirect Route = "direct"
	RouteRelay  Route = "relay"
)

// ParseRoute accepts the config spelling; empty means any.
func ParseRoute(s string) (Route, error) {
	switch Route(s) {
	case "", RouteAny:
		return RouteAny, nil
	case RouteDirect, RouteRelay:
		return Route(s), nil
	}
	return "", fmt.Errorf("unknown route %q (want any, direct or relay)", s)
}

// Allows tells whether a path of kind k may carry this route's traffic.
func (r Route) Allows(k Kind) bool {
	switch r {
	case RouteDirect:
		return k.Direct()
	case RouteRelay:
		return k.Relayed()
	default:
		return true
	}
}

// AllowsDirect tells whether direct paths may be used.
func (r Route) AllowsDirect() bool { return r != RouteRelay }
