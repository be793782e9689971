//go:build !race

// The race detector allocates on its own, so allocation counts are checked
// only without it (scripts/test.sh runs these with the benchmarks).

package e2ee

import "testing"

// TestRecordsAllocs: sealing and opening a record in steady state
// allocates nothing, in either mode's record layer; every relayed,
// encrypted byte goes through them.
func TestRecordsAllocs(t *testing.T) {
	for _, l := range recordLayers {
		for _, s := range []struct {
			name string
			step func(recordLayer, testing.TB) func()
		}{{"seal", recordLayer.sealStep}, {"open", recordLayer.openStep}} {
			if n := testing.AllocsPerRun(100, s.step(l, t)); n != 0 {
				t.Errorf("%s %s: %v allocations per record, want 0", l.name, s.name, n)
			}
		}
	}
}
