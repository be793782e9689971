package netpath

import (
	"cmp"
	"slices"
)

// Better orders paths for new connections: healthy before stale, direct
// before relayed, then by lower RTT. It returns a negative number when a
// should be preferred.
func Better(a, b Path) int {
	if as, bs := Stale(a), Stale(b); as != bs {
		if bs {
			return -1
		}
		return 1
	}
	if ad, bd := a.Kind().Direct(), b.Kind().Direct(); ad != bd {
		if ad {
			return -1
		}
		return 1
	}
	return cmp.Compare(a.RTT(), b.RTT())
}

// Sort orders paths best first.
func Sort(paths []Path) { slices.SortStableFunc(paths, Better) }

// Live tells whether p can still carry streams.
func Live(p Path) bool {
	select {
	case <-p.Done():
		return false
	default:
		return true
	}
}

// retirer is implemented by paths that can be retired: kept for the
// streams they carry, but not used for new ones.
type retirer interface{ Retired() bool }

// Usable tells whether p may carry new streams: live and not retired.
func Usable(p Path) bool {
	if r, ok := p.(retirer); ok && r.Retired() {
		return false
	}
	return Live(p)
}

// stale is implemented by paths that can tell they went silent.
type stale interface{ Stale() bool }

// Stale tells whether p has gone silent (see package liveness); such a
// path is chosen only when no other is left.
func Stale(p Path) bool {
	s, ok := p.(stale)
	return ok && s.Stale()
}
