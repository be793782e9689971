package natlab

import (
	"context"
	"fmt"
	"testing"
)

// PeerTraffic counts UDP packets between A and B, measured in their own
// namespaces, so it works in every topology (in SameLAN the packets only
// cross a bridge). "B's addresses" are B.Addr and B.PublicAddr, and vice
// versa; traffic to and from the server is never counted.
type PeerTraffic struct {
	// AToB and BToA count packets sent towards the other peer, whether or
	// not they got through (e.g. hole punching attempts).
	AToB, BToA uint64
	// AFromB and BFromA count packets from the other peer that reached the
	// namespace: they crossed every NAT on the way.
	AFromB, BFromA uint64
}

// Direct reports whether packets got through directly in both directions.
func (p PeerTraffic) Direct() bool { return p.AFromB > 0 && p.BFromA > 0 }

func (p PeerTraffic) String() string {
	return fmt.Sprintf("A→B sent %d received %d, B→A sent %d received %d", p.AToB, p.BFromA, p.BToA, p.AFromB)
}

// PeerTraffic returns the counts since the lab was built or last reset.
func (l *Lab) PeerTraffic(t testing.TB) PeerTraffic {
	t.Helper()
	p, err := l.peerTraffic(false)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ResetPeerTraffic zeroes the counts and returns what they were.
func (l *Lab) ResetPeerTraffic(t testing.TB) PeerTraffic {
	t.Helper()
	p, err := l.peerTraffic(true)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (l *Lab) peerTraffic(reset bool) (PeerTraffic, error) {
	ctx := context.Background()
	a, err := l.A.nftCounters(ctx, peerTableFamily, peerTable, reset)
	if err != nil {
		return PeerTraffic{}, err
	}
	b, err := l.B.nftCounters(ctx, peerTableFamily, peerTable, reset)
	if err != nil {
		return PeerTraffic{}, err
	}
	return PeerTraffic{
		AToB:   a[counterToPeer],
		AFromB: a[counterFromPeer],
		BToA:   b[counterToPeer],
		BFromA: b[counterFromPeer],
	}, nil
}
