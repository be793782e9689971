package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
	"google.golang.org/protobuf/proto"
)

// The tests here measure the heap of the whole test process, relay and
// clients alike, so none of them runs in parallel, and each says what
// the clients hold on their side.

// grantWait is how long the relays here wait for a client's grant: long
// enough that a flood is over, and measured, before the relay gives up
// on the client (the default 5 s would do on an idle machine).
const grantWait = 30 * time.Second

// heapInUse is the heap in use once garbage, and sync.Pool contents
// (which survive one collection), are gone.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// peakHeap is the largest heapInUse of a few samples over half a second:
// the relay takes in what the clients sent at its own pace.
func peakHeap() int64 {
	var peak int64
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		peak = max(peak, heapInUse())
	}
	return peak
}

// healthyPair is a source and a destination that relay an echo through r
// while the tests attack it: a long-lived connection and a new one at
// each check.
type healthyPair struct {
	src, dst *rawClient
	long     *quic.Stream
	round    int
}

func startHealthy(t *testing.T, r *testRelay) *healthyPair {
	t.Helper()
	now := time.Now()
	src, dst := r.dial(newIdentity(t)), r.dial(newIdentity(t))
	if err := src.present(t, r.grantFor(src.id, now, ep("healthy", pb.Role_ROLE_SOURCE, pb.Route_ROUTE_ANY))); err != nil {
		t.Fatal(err)
	}
	if err := dst.present(t, r.grantFor(dst.id, now, ep("healthy", pb.Role_ROLE_DESTINATION, pb.Route_ROUTE_ANY))); err != nil {
		t.Fatal(err)
	}
	serveRelayed(dst, func(s *quic.Stream) {
		_, _ = io.Copy(s, s)
		_ = s.Close()
	})
	h := &healthyPair{src: src, dst: dst}
	h.long = h.open(t)
	h.check(t)
	return h
}

func (h *healthyPair) open(t *testing.T) *quic.Stream {
	t.Helper()
	s, err := h.src.connect(t, h.dst.id.ID)
	if err != nil {
		t.Fatalf("healthy pair: %v", err)
	}
	return s
}

// check echoes a message over the long-lived connection and over a new
// one.
func (h *healthyPair) check(t *testing.T) {
	t.Helper()
	h.round++
	fresh := h.open(t)
	defer fresh.Close()
	for _, s := range []*quic.Stream{h.long, fresh} {
		msg := fmt.Appendf(nil, "healthy round %d", h.round)
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := s.Write(msg); err != nil {
			t.Fatalf("healthy pair, round %d: %v", h.round, err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(s, got); err != nil || string(got) != string(msg) {
			t.Fatalf("healthy pair, round %d: read %q, %v", h.round, got, err)
		}
	}
}

// muxDialer dials r over a transport.
type muxDialer func(ctx context.Context, r *testRelay, id *identity.Identity) (muxconn.Conn, error)

var muxDialers = map[string]muxDialer{
	"quic": func(_ context.Context, r *testRelay, id *identity.Identity) (muxconn.Conn, error) {
		return muxconn.FromQUIC(r.dial(id).conn), nil
	},
	"tcp": func(ctx context.Context, r *testRelay, id *identity.Identity) (muxconn.Conn, error) {
		return muxconn.DialTCP(ctx, r.srv.TCPAddrs(ctx)[0].String(), id.PinnedClientConfig(r.id.DER(), wire.ALPNRelay))
	},
	"wss": func(ctx context.Context, r *testRelay, id *identity.Identity) (muxconn.Conn, error) {
		d := muxconn.WSSDialer{
			Addr:  r.srv.TCPAddrs(ctx)[0].String(),
			Proxy: func(*http.Request) (*url.URL, error) { return nil, nil },
		}
		return d.Dial(ctx, id.PinnedClientConfig(r.id.DER(), wire.ALPNRelay))
	},
}

// perGrantless is what one grantless client may make the relay hold, at
// most: two streams' windows (512 KiB) and the connection's own buffers,
// with room to spare.
const perGrantless = 4 << 20

// TestGrantlessMuxClientsHoldLittle: a client over TCP or WebSocket with a
// self-signed certificate and no grant, which opens as many streams as it
// can and fills each, makes the relay hold a few MiB at most. yamux gives
// every stream a 256 KiB window, and the relay used to let such a client
// hold 257 of them (its accept backlog) while it waited for the grant:
// four of them grew the relay's heap by 260 MiB. A relayed pair beside
// them keeps working.
func TestGrantlessMuxClientsHoldLittle(t *testing.T) {
	const clients = 4
	for _, name := range []string{"tcp", "wss"} {
		dial := muxDialers[name]
		t.Run(name, func(t *testing.T) {
			r := startRelayQUIC(t, Ingress{Ingress: ingress.Ingress{Addr: "127.0.0.1:0", TCP: true, WSS: true}}, tuning.QUIC(grantWait))
			healthy := startHealthy(t, r)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			before := heapInUse()
			for range clients {
				c, err := dial(ctx, r, newIdentity(t))
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseWithError(0, "")
				t.Logf("streams taken: %d", flood(ctx, c))
			}
			grew := peakHeap() - before
			t.Logf("%d grantless clients grew the heap by %d KiB", clients, grew>>10)
			if grew > clients*perGrantless {
				t.Fatalf("%d grantless clients grew the heap by %d MiB, want at most %d MiB", clients, grew>>20, clients*perGrantless>>20)
			}
			healthy.check(t)
		})
	}
}

// flood opens streams on c, up to 300, writing 256 KiB (a stream's whole
// window) into each but the first (which a grant would use: the relay
// waits on it), until c fails; it returns how many streams took all. It
// writes 2 KiB at a time: what yamux still queues on the client's side
// when the connection fails (64 writes) counts in the heap too.
func flood(ctx context.Context, c muxconn.Conn) int {
	// The first stream stays open, with nothing written: closing it
	// would end the wait for the grant, and the client with it.
	if _, err := c.OpenStream(ctx); err != nil {
		return 0
	}
	piece := make([]byte, 2<<10)
	taken := 0
	for range 300 {
		// yamux lets a client open 256 streams the server has not
		// answered yet; the next one waits.
		octx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		s, err := c.OpenStream(octx)
		cancel()
		if err != nil {
			return taken
		}
		_ = s.SetWriteDeadline(time.Now().Add(time.Second))
		for range muxconn.StreamWindow / len(piece) {
			if _, err := s.Write(piece); err != nil {
				return taken
			}
		}
		taken++
	}
	return taken
}

// TestGrantlessQUICClientHoldsLittle: a grantless client over QUIC may
// open only the streams its quotas would allow once admitted, so naming
// its last stream makes the relay allocate a few MiB. The limit used to
// be tuning.MaxStreams, and naming stream 131 071 made the relay allocate
// 210 MiB for the streams below it. A relayed pair beside it keeps
// working.
func TestGrantlessQUICClientHoldsLittle(t *testing.T) {
	const maxRelaySide = 16 << 20
	r := startRelayQUIC(t, Ingress{Ingress: ingress.Ingress{Addr: "127.0.0.1:0"}}, tuning.QUIC(grantWait))
	healthy := startHealthy(t, r)
	c := r.dial(newIdentity(t))
	// The relay waits for a grant on the client's first stream until its
	// connection closes.
	defer c.conn.CloseWithError(0, "")
	before := heapInUse()
	var last *quic.Stream
	opened := 0
	for range tuning.MaxStreams + 1 {
		s, err := c.conn.OpenStream()
		var limit *quic.StreamLimitReachedError
		if errors.As(err, &limit) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		last, opened = s, opened+1
	}
	// Until they are used, the streams are the client's alone.
	clientSide := heapInUse()
	if want := int(maxIncoming(Quotas{})); opened != want {
		t.Errorf("a grantless client could open %d streams, want %d", opened, want)
	}
	if _, err := last.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	relaySide := peakHeap() - clientSide
	t.Logf("%d streams: %d KiB on the client's side, %d KiB on the relay's", opened, (clientSide-before)>>10, relaySide>>10)
	if relaySide > maxRelaySide {
		t.Fatalf("naming stream %d made the relay allocate %d MiB, want at most %d MiB", opened, relaySide>>20, maxRelaySide>>20)
	}
	healthy.check(t)
}

// stallSlack is what stalled connections may make the relay hold beyond
// their windows: the big copy buffers (maxBursts of 64 KiB), a few KiB
// of state for each stream at the relay and at both clients, and what the
// destination buffers (4 KiB a stream, see stallingDestination).
const stallSlack = 16 << 20

// TestStalledStreamsHoldAtMostTheWindowBudget: a source that opens many
// relayed connections and fills them while its destination never reads
// makes the relay hold at most maxWindows (and stallSlack), over any
// transport. Over QUIC the connection's flow-control window bounds it.
// Over TCP and WebSocket, where each of yamux's streams holds 256 KiB,
// the relay refuses the streams that would go beyond it (LIMIT): it used
// to take them all, 600 of them 150 MiB (the stream quota, 4096: 1 GiB).
// A relayed pair beside them keeps working.
func TestStalledStreamsHoldAtMostTheWindowBudget(t *testing.T) {
	const conns = 600
	for _, transport := range []string{"quic", "tcp", "wss"} {
		t.Run(transport, func(t *testing.T) {
			r := startRelayAt(t, Ingress{Ingress: ingress.Ingress{Addr: "127.0.0.1:0", TCP: true, WSS: true}})
			healthy := startHealthy(t, r)
			dst := stallingDestination(t, r)
			before := heapInUse()
			src := dialMux(t, r, transport)
			if err := src.present(r.grantFor(src.id, time.Now(), ep("web", pb.Role_ROLE_SOURCE, pb.Route_ROUTE_ANY))); err != nil {
				t.Fatal(err)
			}
			var streams []muxconn.Stream
			refused := 0
			for i := range conns {
				s, err := src.connect(dst.id.ID)
				if code(err) == pb.ErrorCode_ERROR_CODE_LIMIT {
					refused++
					continue
				}
				if err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				streams = append(streams, s)
			}
			// Each source fills its connection until the relay stops
			// taking more.
			var wg sync.WaitGroup
			fill := make([]byte, 1<<20)
			for _, s := range streams {
				wg.Go(func() {
					_ = s.SetWriteDeadline(time.Now().Add(2 * time.Second))
					_, _ = s.Write(fill)
				})
			}
			wg.Wait()
			grew := peakHeap() - before
			t.Logf("%d connections relayed, %d refused: the heap grew by %d MiB", len(streams), refused, grew>>20)
			if grew > maxWindows+stallSlack {
				t.Fatalf("%d stalled connections grew the heap by %d MiB, want at most %d MiB", len(streams), grew>>20, (maxWindows+stallSlack)>>20)
			}
			if transport != "quic" && refused == 0 {
				t.Fatalf("none of %d connections over %s refused, want those beyond the windows' budget refused", conns, transport)
			}
			healthy.check(t)
		})
	}
}

// stallingDestination admits a destination of "web" at r that takes every
// relayed connection and never reads from it, over QUIC with 4 KiB stream
// windows, so that it holds little of what the relay sends.
func stallingDestination(t *testing.T, r *testRelay) *rawClient {
	t.Helper()
	qconf := tuning.QUIC(0)
	qconf.InitialStreamReceiveWindow = 4 << 10
	qconf.MaxStreamReceiveWindow = 4 << 10
	qconf.InitialConnectionReceiveWindow = tuning.MaxConnectionWindow
	dst := r.dialWith(newIdentity(t), qconf)
	if err := dst.present(t, r.grantFor(dst.id, time.Now(), ep("web", pb.Role_ROLE_DESTINATION, pb.Route_ROUTE_ANY))); err != nil {
		t.Fatal(err)
	}
	serveRelayed(dst, func(*quic.Stream) {})
	return dst
}

// serveRelayed runs serve for each relayed connection the relay opens
// towards c, once its header is read, until c's connection closes (at the
// end of the test).
func serveRelayed(c *rawClient, serve func(*quic.Stream)) {
	go func() {
		for {
			s, err := c.conn.AcceptStream(context.Background())
			if err != nil {
				return
			}
			go func() {
				var hello pb.RelayIncoming
				if wire.Read(s, &hello, wire.MaxStreamHeader) == nil {
					serve(s)
				}
			}()
		}
	}()
}

// muxClient is a client of the relay over any transport.
type muxClient struct {
	id   *identity.Identity
	conn muxconn.Conn
}

func dialMux(t testing.TB, r *testRelay, transport string) *muxClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := newIdentity(t)
	c, err := muxDialers[transport](ctx, r, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseWithError(0, "") })
	return &muxClient{id: id, conn: c}
}

// present sends the client's first grant.
func (m *muxClient) present(sg *pb.SignedGrant) error {
	_, err := m.request(sg)
	return err
}

// connect asks the relay for a connection to peer.
func (m *muxClient) connect(peer identity.ID) (muxconn.Stream, error) {
	return m.request(&pb.RelayConnect{Peer: peer[:]})
}

// request opens a stream, sends msg and reads the relay's reply; the
// stream is returned if the relay took it.
func (m *muxClient) request(msg proto.Message) (muxconn.Stream, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := m.conn.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	// The relay refuses a stream over a quota as soon as it arrives, so
	// its reset may come before the request is written; the refusal is
	// there to read all the same.
	werr := wire.Write(s, msg)
	var reply pb.RelayReply
	if err := wire.Read(s, &reply, wire.MaxStreamHeader); err != nil {
		s.Reset()
		return nil, errors.Join(werr, err)
	}
	if err := wire.FromPB(reply.GetError()); err != nil {
		s.Reset()
		return nil, err
	}
	_ = s.SetDeadline(time.Time{})
	return s, nil
}
