// Package metrics defines the Prometheus metrics of connet's components
// (client, control server, relay), each registered on a registry of its
// own: nothing goes to the global default registry, so several components
// in one process (as in tests, or a program embedding connet) keep their
// numbers apart.
//
// Everything is counted per connection or per event, never per packet or
// per write: a tunnelled connection costs a few atomic additions when it
// opens and when it closes, and its bytes are added once, at close, from
// the totals its splice returns. Every method is a no-op on a nil receiver,
// so components built without metrics (tests of internal packages) need
// no checks.
package metrics
