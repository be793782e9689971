package relayclient

import (
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/testwait"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// maintaining counts the maintain goroutines running now.
func maintaining() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "relayclient.(*Manager).maintain(")
}

// TestCloseWaitsForMaintain offers a relay before any grant, so its
// maintain goroutine waits for one; Close must end it before returning,
// and an offer after Close must start nothing.
func TestCloseWaitsForMaintain(t *testing.T) {
	self, rel := mustIdentity(t), mustIdentity(t)
	m := New(Config{Identity: self, Logger: slog.New(slog.DiscardHandler)})
	offer := []*pb.Relay{{Id: rel.ID[:], Certificate: rel.DER(), Hostports: []string{"127.0.0.1:1"}}}
	m.Apply(offer, nil)
	testwait.For(t, 10*time.Second, func() bool { return maintaining() != 0 }, "maintain to start")
	m.Close()
	if n := maintaining(); n != 0 {
		t.Fatalf("%d maintain goroutines after Close", n)
	}
	m.Apply(offer, nil)
	if m.Offered() || maintaining() != 0 {
		t.Fatal("a relay offered after Close was taken up")
	}
}

func mustIdentity(t *testing.T) *identity.Identity {
	t.Helper()
	id, err := identity.Generate("test")
	if err != nil {
		t.Fatal(err)
	}
	return id
}
