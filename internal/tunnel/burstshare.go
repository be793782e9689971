package tunnel

import "io"

// BurstSharer is a source whose directions share a few big buffers: a
// relay gives each client a share, since a direction whose far end stops
// reading keeps its big buffer for as long (64 KiB for every stalled
// connection the client holds, otherwise). A direction that finds the
// share taken goes on with its small buffer.
type BurstSharer interface {
	// TakeBurst takes a big buffer from the share, if one is free.
	TakeBurst() bool
	// PutBurst gives it back.
	PutBurst()
}

// sharedBurst copies the rest of a burst from src (see burst), through a
// big buffer if src's share has one free; otherwise it copies nothing and
// the caller goes on with its small buffer.
func sharedBurst(dst io.Writer, src io.Reader, n *int64) error {
	s, ok := src.(BurstSharer)
	if !ok {
		return burst(dst, src.Read, n, nil)
	}
	if !s.TakeBurst() {
		return nil
	}
	defer s.PutBurst()
	return burst(dst, src.Read, n, nil)
}
