package peer

// EndpointKey names one endpoint of a client: the control server refuses
// endpoints by it, and a client keeps its own endpoints by it.
type EndpointKey struct {
	Name string
	Role Role
}
