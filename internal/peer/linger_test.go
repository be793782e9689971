package peer

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
)

// TestRegistryLingerVirtualTime runs the registry's linger timers on a
// synctest bubble's clock: a peer the server stops naming stays (with its
// paths) for the whole linger period, is forgotten right after it, and a
// new announcement within the period cancels the expiry. The real linger
// is a minute; on the fake clock the test takes no real time.
func TestRegistryLingerVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const linger = time.Minute
		r := NewRegistry(linger, func(p *Peer) { <-p.Gone() })
		defer r.Close()
		r.Apply([]Info{testInfo(1), testInfo(2)})
		p1, p2 := r.Get(identity.ID{1}), r.Get(identity.ID{2})

		r.Apply(nil)
		time.Sleep(linger / 2)
		// Peer 1 comes back within the period; peer 2 does not.
		r.Apply([]Info{testInfo(1)})
		time.Sleep(linger/2 - time.Millisecond)
		synctest.Wait()
		if r.Get(identity.ID{2}) == nil {
			t.Fatal("peer forgotten before its linger period ended")
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		select {
		case <-p2.Gone():
		default:
			t.Fatal("peer not forgotten right after its linger period")
		}
		if r.Get(identity.ID{2}) != nil {
			t.Fatal("forgotten peer still listed")
		}

		// Peer 1's expiry was cancelled, not merely postponed.
		time.Sleep(10 * linger)
		synctest.Wait()
		select {
		case <-p1.Gone():
			t.Fatal("a peer announced again was forgotten")
		default:
		}
	})
}
