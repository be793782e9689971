package direct

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire"
)

// testNode is one side of a direct pair: a node, its registry and its
// accept loop.
type testNode struct {
	node      *Node
	registry  *peer.Registry
	id        *identity.Identity
	addr      netip.AddrPort
	stopAcc   context.CancelFunc
	accepting chan struct{}
}

func newTestNode(t *testing.T) *testNode {
	t.Helper()
	tr := newTransport(t)
	id := newIdentity(t)
	tn := &testNode{id: id, addr: addrOf(tr), accepting: make(chan struct{})}
	tn.node = &Node{
		Transport:   tr,
		Identity:    id,
		Config:      tuning.QUIC(2 * time.Second),
		Logger:      slog.New(slog.DiscardHandler),
		AllowDirect: func(peer.State) bool { return true },
		OnPath:      func(*peer.Peer, *netpath.QUIC) {},
	}
	tn.registry = peer.NewRegistry(time.Hour, tn.node.Maintain)
	tn.node.Registry = tn.registry
	ln, err := tr.Listen(id.PinnedServerConfig(wire.ALPNPeer, tn.registry.Known, time.Second), tn.node.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn.stopAcc = cancel
	go func() {
		defer close(tn.accepting)
		_ = tn.node.Accept(ctx, ln)
	}()
	return tn
}

// close stops the node the way the client does: accept loop and registry
// first, then the node's own goroutines.
func (tn *testNode) close() {
	tn.stopAcc()
	<-tn.accepting
	tn.registry.Close()
	tn.node.Wait()
}

// TestNodeWaitsForItsGoroutines connects two nodes directly, then closes
// them. The delayed prune of each new path must not outlive the node (it
// used to be a bare time.AfterFunc); goleak in TestMain checks that
// nothing else does either.
func TestNodeWaitsForItsGoroutines(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	a.registry.Apply([]peer.Info{{ID: b.id.ID, Cert: b.id.DER(), Candidates: []netip.AddrPort{b.addr}}})
	b.registry.Apply([]peer.Info{{ID: a.id.ID, Cert: a.id.DER(), Candidates: []netip.AddrPort{a.addr}}})
	pa := a.registry.Get(b.id.ID)
	deadline := time.After(10 * time.Second)
	for {
		st, changed := pa.State()
		if st.HasDirect() {
			break
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("no direct path between the nodes")
		}
	}
	done := make(chan struct{})
	go func() {
		a.close()
		b.close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(pruneDelay / 2):
		t.Fatal("closing the nodes waited for the prune delay")
	}
}
