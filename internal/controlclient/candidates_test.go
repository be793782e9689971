package controlclient_test

import (
	"context"
	"crypto/tls"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/p2pconnet/connet/internal/controlclient"
	"github.com/p2pconnet/connet/internal/notify"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// TestCandidateTheServerRefusesIsLeftOut: a mapped address with port 0
// (what a broken gateway can grant) is one the control server refuses,
// ending the session. The client leaves it out and announces the rest:
// its peer sees the good candidate (beside the address the server
// observed), and the client connected once, not into the same refusal
// again and again.
func TestCandidateTheServerRefusesIsLeftOut(t *testing.T) {
	t.Parallel()
	ctx, cert, udp, _ := tcpServer(t, true)
	cfg := func(connected func()) controlclient.Config {
		return controlclient.Config{
			ServerAddr: udp,
			TLS:        &tls.Config{MinVersion: tls.VersionTLS13, ServerName: "localhost", RootCAs: cert.Pool},
			QUIC:       tuning.QUIC(0),
			Token:      "good",
			Connected:  connected,
		}
	}
	good := netip.MustParseAddrPort("203.0.113.20:4500")
	bad := netip.MustParseAddrPort("203.0.113.20:0")

	var connects atomic.Int64
	var dstAnn notify.Value[controlclient.Announcement]
	dstAnn.Set(controlclient.Announcement{
		Endpoints: []*pb.Endpoint{{Name: "svc", Role: pb.Role_ROLE_DESTINATION}},
		Mapped:    []netip.AddrPort{bad, good},
	})
	dst := testSessionWith(t, cfg(func() { connects.Add(1) }), &dstAnn, func(controlclient.State) {})

	var srcAnn notify.Value[controlclient.Announcement]
	srcAnn.Set(controlclient.Announcement{Endpoints: []*pb.Endpoint{{Name: "svc", Role: pb.Role_ROLE_SOURCE}}})
	var seen notify.Value[[]netip.AddrPort]
	src := testSessionWith(t, cfg(nil), &srcAnn, func(st controlclient.State) {
		for _, p := range st.Peers {
			seen.Set(p.Candidates)
		}
	})

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- dst.Run(runCtx) }()
	go func() { done <- src.Run(runCtx) }()
	defer func() { stop(); <-done; <-done }()

	for {
		cands, changed := seen.Get()
		if slices.Contains(cands, good) {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			st, _ := dst.Status()
			t.Fatalf("the source never saw the destination's candidate %s (saw %v; destination connected %d times, last error %q)",
				good, cands, connects.Load(), st.LastError)
		}
	}
	if n := connects.Load(); n != 1 {
		t.Fatalf("the destination connected %d times, want once", n)
	}
}
