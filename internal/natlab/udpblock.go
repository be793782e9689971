package natlab

import (
	"context"
	"testing"
	"time"
)

// UnblockUDP lifts the firewall of the UDPBlocked topology: A's router
// becomes a plain cone NAT, in one nftables transaction, so flows it
// already tracks keep their mappings.
func (l *Lab) UnblockUDP(t testing.TB) {
	t.Helper()
	if l.Topology != UDPBlocked {
		t.Fatalf("natlab: UnblockUDP in %s", l.Topology)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.A.NAT.Router.nftApply(ctx, "delete table ip natlab\n"+routerRuleset(ConeNAT)); err != nil {
		t.Fatal(err)
	}
}
