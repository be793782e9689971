//go:build !unix

package tunnel

import "io"

// socketReaderOf returns nil: reading a socket without a blocking read is
// done through RawConn with unix syscalls here.
func socketReaderOf(io.Reader) *socketReader { return nil }
