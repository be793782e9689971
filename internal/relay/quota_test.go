package relay

import (
	"context"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/wire/pb"
)

// pairedClients admits a source and a destination of "web" at r.
func pairedClients(t *testing.T, r *testRelay) (src, dst *rawClient) {
	t.Helper()
	now := time.Now()
	src, dst = r.dial(newIdentity(t)), r.dial(newIdentity(t))
	if err := src.present(t, r.grantFor(src.id, now, ep("web", pb.Role_ROLE_SOURCE, pb.Route_ROUTE_ANY))); err != nil {
		t.Fatal(err)
	}
	if err := dst.present(t, r.grantFor(dst.id, now, ep("web", pb.Role_ROLE_DESTINATION, pb.Route_ROUTE_ANY))); err != nil {
		t.Fatal(err)
	}
	return src, dst
}

// TestRelayStreamQuota: a client may hold Streams relayed connections;
// the next is refused with LIMIT, and other clients are not affected.
func TestRelayStreamQuota(t *testing.T) {
	r := startRelayWithQuotas(t, Quotas{Streams: 2})
	src, dst := pairedClients(t, r)
	for i := range 2 {
		if _, err := src.connect(t, dst.id.ID); err != nil {
			t.Fatalf("connection %d within the quota: %v", i, err)
		}
	}
	if _, err := src.connect(t, dst.id.ID); code(err) != pb.ErrorCode_ERROR_CODE_LIMIT {
		t.Fatalf("a connection over the quota: %v, want a LIMIT refusal", err)
	}
	other, otherDst := pairedClients(t, r)
	if _, err := other.connect(t, otherDst.id.ID); err != nil {
		t.Fatalf("another client, within its own quota: %v", err)
	}
}

// TestRelayPendingQuota: streams that never send their header hold a
// client's pending quota; the next stream is refused at once with LIMIT
// instead of joining them, and another client is not affected.
func TestRelayPendingQuota(t *testing.T) {
	r := startRelayWithQuotas(t, Quotas{Pending: 3})
	src, dst := pairedClients(t, r)
	stallStreams(t, src, 3)
	// The relay counts streams in the order they were opened, so the
	// stalled ones hold the quota by the time this one arrives.
	if _, err := src.connect(t, dst.id.ID); code(err) != pb.ErrorCode_ERROR_CODE_LIMIT {
		t.Fatalf("a stream beyond the pending quota: %v, want a LIMIT refusal", err)
	}
	other, otherDst := pairedClients(t, r)
	if _, err := other.connect(t, otherDst.id.ID); err != nil {
		t.Fatalf("another client: %v", err)
	}
}

// TestDefaultPendingQuotaTakesABurst: by default a client may have a
// browser-sized burst of new streams waiting at once (200 here, past the
// old default of 64) and still open another.
func TestDefaultPendingQuotaTakesABurst(t *testing.T) {
	r := startRelayWithQuotas(t, Quotas{})
	src, dst := pairedClients(t, r)
	stallStreams(t, src, 200)
	if _, err := src.connect(t, dst.id.ID); err != nil {
		t.Fatalf("a stream after a burst of 200: %v", err)
	}
}

// stallStreams opens n streams from c that each send one byte of a header
// that never completes, so that they wait at the relay.
func stallStreams(t *testing.T, c *rawClient, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range n {
		s, err := c.conn.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte{0}); err != nil {
			t.Fatal(err)
		}
	}
}
