package wire

import "github.com/p2pconnet/connet/internal/wire/pb"

// RoleName is the config spelling of a role: "destination" or "source"
// ("" for none).
func RoleName(r pb.Role) string {
	switch r {
	case pb.Role_ROLE_DESTINATION:
		return "destination"
	case pb.Role_ROLE_SOURCE:
		return "source"
	}
	return ""
}

// RouteName is the config spelling of a route: "any", "direct" or "relay".
func RouteName(r pb.Route) string {
	switch r {
	case pb.Route_ROUTE_DIRECT:
		return "direct"
	case pb.Route_ROUTE_RELAY:
		return "relay"
	}
	return "any"
}

// RouteFromName is the inverse of RouteName; anything else means any.
func RouteFromName(s string) pb.Route {
	switch s {
	case "direct":
		return pb.Route_ROUTE_DIRECT
	case "relay":
		return pb.Route_ROUTE_RELAY
	}
	return pb.Route_ROUTE_ANY
}
