//go:build !unix

package tunnel

import "io"

// readWaiter returns nil: waiting for data without a buffer is done with
// a peek that only unix sockets offer here.
func readWaiter(io.Reader) *waiter { return nil }
