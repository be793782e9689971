package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
)

// TestDeadDestinationNotChosen runs two destinations of one name on A, each
// in front of its own service, kills the one the source prefers, and
// checks that new connections go to the other. It reports how long after
// the kill the source stopped choosing the dead one.
func TestDeadDestinationNotChosen(t *testing.T) {
	d := newDeployment(t, natlab.Cone)
	d.startServer()
	bodies := map[string][]byte{"dest1": []byte("served by dest1"), "dest2": []byte("served by dest2")}
	procs := map[string]*natlab.Proc{}
	for i, name := range []string{"dest1", "dest2"} {
		port := 3000 + i
		serveText(t, d.lab.A, fmt.Sprintf("127.0.0.1:%d", port), string(bodies[name]))
		procs[name] = d.startDestinationAt(name, 19192+2*i, port)
	}
	d.startSource("any")

	peersUp := func(st connet.ClientStatus) bool {
		if len(st.Sources) != 1 || len(st.Sources[0].Peers) != 2 {
			return false
		}
		for _, p := range st.Sources[0].Peers {
			if len(p.Paths) == 0 {
				return false
			}
		}
		return true
	}
	if _, _, err := waitStatus(d.lab.B, pathLimit, peersUp); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := d.fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chosen, other := "dest1", "dest2"
	if string(got) == string(bodies["dest2"]) {
		chosen, other = other, chosen
	}

	if err := procs[chosen].Kill(); err != nil {
		t.Logf("kill: %v", err)
	}
	killed := time.Now()
	// The dead destination must stop being chosen: its paths go stale (or
	// vanish), well before the 30 s idle timeout would close them.
	_, _, err = waitStatus(d.lab.B, pathLimit, func(st connet.ClientStatus) bool {
		for _, p := range st.Sources[0].Peers {
			if p.Metadata != chosen {
				continue
			}
			for _, path := range p.Paths {
				if !path.Stale {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURE dead_destination_unchosen_ms=%d", time.Since(killed).Milliseconds())
	got, err = d.fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(bodies[other]) {
		t.Fatalf("after %s died, got %q, want %s's answer", chosen, got, other)
	}
}
