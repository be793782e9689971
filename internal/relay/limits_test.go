package relay

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
)

// TestFirstGrantIsCapped: the grant a client presents before it is
// admitted is read under wire.MaxGrant. The largest grant the control
// server signs (MaxEndpoints endpoints with names of MaxNameLen) is
// admitted; a frame announcing more is refused at once, without waiting
// for a body. The relay used to accept frames up to MaxControlMessage from
// anyone who completed a TLS handshake.
func TestFirstGrantIsCapped(t *testing.T) {
	t.Parallel()
	r := startRelay(t)

	eps := make([]*pb.Endpoint, wire.MaxEndpoints)
	for i := range eps {
		name := strings.Repeat("n", wire.MaxNameLen-3) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + "x"
		eps[i] = &pb.Endpoint{Name: name, Role: pb.Role_ROLE_SOURCE, Route: pb.Route_ROUTE_RELAY, RelayEncryptions: []string{"tls", "dhxcp", "none"}}
	}
	id := newIdentity(t)
	big := r.dial(id)
	if err := big.present(t, r.grantFor(id, time.Now(), eps...)); err != nil {
		t.Fatalf("the largest grant was refused: %v", err)
	}

	over := r.dial(newIdentity(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := over.conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(binary.BigEndian.AppendUint32(nil, wire.MaxGrant+1)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-over.conn.Context().Done():
	case <-ctx.Done():
		t.Fatal("the relay did not close the connection")
	}
	var aerr *quic.ApplicationError
	if cause := context.Cause(over.conn.Context()); !errors.As(cause, &aerr) || aerr.ErrorCode != codeRefused || !strings.Contains(aerr.ErrorMessage, "too large") {
		t.Fatalf("connection ended with %v, want a refusal for a message too large", cause)
	}
}
