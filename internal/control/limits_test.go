package control

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"google.golang.org/protobuf/proto"
)

// helloWith sends a hello with the given metadata, writing from another
// goroutine (a hello over the cap is not read, and its write returns only
// when the server stops it), and returns the server's reply.
func (c *rawClient) helloWith(t *testing.T, token, metadata string) *pb.HelloReply {
	t.Helper()
	wrote := make(chan error, 1)
	go func() { wrote <- wire.Write(c.stream, &pb.Hello{Token: token, Metadata: metadata}) }()
	var reply pb.HelloReply
	if err := wire.Read(c.stream, &reply, wire.MaxControlMessage); err != nil {
		t.Fatalf("reading HelloReply: %v", err)
	}
	<-wrote // Done either way: written, or stopped by the server.
	return &reply
}

// TestOversizedMetadataIsRefused: a client announcing more metadata than
// MaxMetadata is refused with a clear error in its hello reply. It used to
// be accepted, and with metadata near MaxControlMessage every peer sharing
// a name with it got a state too large to read, failing and reconnecting
// in a loop. A healthy peer of the same name keeps its connection and
// keeps reading its states, and a client with metadata at the limit is
// served.
func TestOversizedMetadataIsRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{})
	ctx := testContext(t)
	healthy := ts.connect(ctx, t, goodToken, dst("web"))
	healthy.waitState(t, "the first state arrived", func(*pb.ServerState) bool { return true })

	for _, tc := range []struct {
		name     string
		metadata int
		want     string
	}{
		{"near the frame cap", wire.MaxControlMessage - 1<<10, "hello too large"},
		{"over the hello cap", wire.MaxHello + 1, "hello too large"},
		{"over the metadata limit", wire.MaxMetadata + 1, fmt.Sprintf("metadata of %d bytes", wire.MaxMetadata+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := ts.dial(ctx, t)
			reply := bad.helloWith(t, goodToken, strings.Repeat("m", tc.metadata))
			err := wire.FromPB(reply.GetError())
			if err == nil || reply.GetError().GetCode() != pb.ErrorCode_ERROR_CODE_LIMIT || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("hello with %d bytes of metadata: reply error %v, want a limit error saying %q", tc.metadata, err, tc.want)
			}
			bad.waitClosed(t)
		})
	}

	// At the limit: served, and the healthy peer reads the state that
	// carries it (under the cap clients read with).
	ok := ts.dial(ctx, t)
	if reply := ok.helloWith(t, goodToken, strings.Repeat("m", wire.MaxMetadata)); reply.GetError() != nil {
		t.Fatalf("metadata at the limit refused: %v", wire.FromPB(reply.GetError()))
	}
	ok.write(t, &pb.ClientState{Endpoints: []*pb.Endpoint{src("web")}})
	st := healthy.waitState(t, "the client at the limit is a peer", func(st *pb.ServerState) bool { return peerOf(st, ok) != nil })
	if got := len(peerOf(st, ok).GetMetadata()); got != wire.MaxMetadata {
		t.Fatalf("peer metadata of %d bytes, want %d", got, wire.MaxMetadata)
	}
	if err := healthy.conn.Context().Err(); err != nil {
		t.Fatalf("the healthy client's connection ended: %v", context.Cause(healthy.conn.Context()))
	}
}

// TestEndpointLimitsRefuseOnlyThatEndpoint: an endpoint with a name over
// maxNameLen or relay encryptions beyond the known modes is refused alone,
// with the reason, while the client's other endpoints work and its
// connection stays. A long name used to end the connection, and relay
// encryptions were not checked at all.
func TestEndpointLimitsRefuseOnlyThatEndpoint(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{})
	ctx := testContext(t)
	long := strings.Repeat("é", maxNameLen) // 2 bytes a rune: cut mid-rune
	enc := func(name string, encs ...string) *pb.Endpoint {
		return &pb.Endpoint{Name: name, Role: pb.Role_ROLE_DESTINATION, RelayEncryptions: encs}
	}
	c := ts.connect(ctx, t, goodToken,
		enc("ok", "tls", "dhxcp", "none"),
		dst(long),
		enc("twice", "tls", "tls"),
		enc("unknown", "rot13"),
		enc("many", "tls", "dhxcp", "none", "tls"),
	)
	st := c.waitState(t, "refusals arrived", func(st *pb.ServerState) bool { return len(st.GetRefused()) > 0 })
	want := map[string]pb.ErrorCode{
		long[:maxNameLen]: pb.ErrorCode_ERROR_CODE_LIMIT,
		"twice":           pb.ErrorCode_ERROR_CODE_BAD_REQUEST,
		"unknown":         pb.ErrorCode_ERROR_CODE_BAD_REQUEST,
		"many":            pb.ErrorCode_ERROR_CODE_LIMIT,
	}
	if len(st.GetRefused()) != len(want) {
		t.Fatalf("refused %v, want %d refusals", st.GetRefused(), len(want))
	}
	for _, r := range st.GetRefused() {
		code, ok := want[r.GetName()]
		if !ok || r.GetError().GetCode() != code || r.GetError().GetMessage() == "" {
			t.Fatalf("refusal %q: %v, want code %v with a reason", r.GetName(), r.GetError(), code)
		}
	}
	peer := ts.connect(ctx, t, goodToken, src("ok"), src(long), src("twice"))
	st = peer.waitState(t, "the client is a peer", func(st *pb.ServerState) bool { return peerOf(st, c) != nil })
	if eps := peerOf(st, c).GetEndpoints(); len(eps) != 1 || eps[0].GetName() != "ok" || len(eps[0].GetRelayEncryptions()) != 3 {
		t.Fatalf("the peer sees %v, want only ok with its three encryptions", eps)
	}
	if err := c.conn.Context().Err(); err != nil {
		t.Fatalf("connection ended: %v", context.Cause(c.conn.Context()))
	}
}

// TestStateFitsTheCap: however many peers share a name, the state a client
// gets fits the size it reads states with; the largest peers are left out.
// Here the cap is lowered so that a few peers with metadata at the limit
// overflow it; before, the server sent the oversized state regardless and
// the client could not read it.
func TestStateFitsTheCap(t *testing.T) {
	t.Parallel()
	const maxState = 8 << 10
	restricted := NewToken("web-only")
	restricted.NameMatches = regexp.MustCompile(`^web$`)
	ts := startServer(t, Config{maxState: maxState, Tokens: []Token{NewToken(goodToken), restricted}})
	ctx := testContext(t)
	const sources = 10 // about 1.3 KiB each as a peer: 13 KiB together
	for range sources {
		s := ts.dial(ctx, t)
		if reply := s.helloWith(t, "web-only", strings.Repeat("m", wire.MaxMetadata)); reply.GetError() != nil {
			t.Fatal(wire.FromPB(reply.GetError()))
		}
		// The refused endpoint shows in a state once the server has
		// taken the announcement, so all sources are in before the
		// destination comes.
		s.write(t, &pb.ClientState{Endpoints: []*pb.Endpoint{src("web"), src("not-web")}})
		s.waitState(t, "the announcement was taken", func(st *pb.ServerState) bool { return len(st.GetRefused()) == 1 })
	}
	d := ts.connect(ctx, t, goodToken, dst("web"))
	for {
		var st pb.ServerState
		if err := wire.Read(d.stream, &st, maxState); err != nil {
			t.Fatalf("reading a state under the cap of %d bytes: %v", maxState, err)
		}
		if n := len(st.GetPeers()); n > 0 {
			if n >= sources {
				t.Fatalf("all %d peers in a state of %d bytes", n, proto.Size(&st))
			}
			break
		}
	}
}

// TestFitState: fitState leaves out the largest peers first, keeps the
// order of the others, and does not change the state it is given.
func TestFitState(t *testing.T) {
	peer := func(id byte, metadata int) *pb.Peer {
		return &pb.Peer{Id: bytes.Repeat([]byte{id}, 32), Metadata: strings.Repeat("m", metadata)}
	}
	st := &pb.ServerState{Peers: []*pb.Peer{peer(1, 100), peer(2, 3000), peer(3, 200), peer(4, 2000), peer(5, 100)},
		Refused: []*pb.EndpointStatus{{Name: "x"}}, Grant: &pb.SignedGrant{Grant: []byte("g")}}
	before := proto.Clone(st)
	log := slog.New(slog.DiscardHandler)

	same, err := fitState(st, proto.Size(st), log)
	if err != nil || same != st {
		t.Fatalf("a state at the cap: %v, %v; want it unchanged", same, err)
	}
	got, err := fitState(st, 1500, log)
	if err != nil {
		t.Fatal(err)
	}
	if proto.Size(got) > 1500 {
		t.Fatalf("fitted state of %d bytes", proto.Size(got))
	}
	var ids []byte
	for _, p := range got.GetPeers() {
		ids = append(ids, p.GetId()[0])
	}
	if !bytes.Equal(ids, []byte{1, 3, 5}) {
		t.Fatalf("kept peers %v, want 1 3 5", ids)
	}
	if len(got.GetRefused()) != 1 || got.GetGrant() == nil {
		t.Fatalf("fitted state lost its other fields: %v", got)
	}
	if !proto.Equal(st, before) {
		t.Fatal("fitState changed its input")
	}
	if _, err := fitState(st, 5, log); err == nil {
		t.Fatal("a state that cannot fit was accepted")
	}
}
