package relay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/relay"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/tuning"
)

// tap collects what a relay forwards.
type tap struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *tap) see(b []byte) {
	t.mu.Lock()
	t.buf.Write(b)
	t.mu.Unlock()
}

func (t *tap) contains(marker []byte) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Contains(t.buf.Bytes(), marker)
}

// TestRelaySeesNoPlaintext relays a payload with a known marker between two
// real clients through a relay whose every forwarded byte is tapped. With
// tls or dhxcp the marker never appears in what the relay handled; with
// none it does (which shows the tap sees the traffic).
func TestRelaySeesNoPlaintext(t *testing.T) {
	for _, tc := range []struct {
		enc          connet.RelayEncryption
		relayCanRead bool
	}{
		{connet.NoEncryption, true},
		{connet.TLSEncryption, false},
		{connet.DHXCPEncryption, false},
	} {
		t.Run(string(tc.enc), func(t *testing.T) {
			tp := &tap{}
			src := setup(t, tp, tc.enc)
			marker := []byte("CONNET-MARKER-" + rand.Text())
			payload := bytes.Repeat(append(marker, '\n'), 2000)
			conn := dial(t, src)
			defer conn.Close()
			go func() {
				_, _ = conn.Write(payload)
				_ = conn.(interface{ CloseWrite() error }).CloseWrite()
			}()
			got, err := io.ReadAll(conn)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("echo through the relay: %d of %d bytes, %v", len(got), len(payload), err)
			}
			if seen := tp.contains(marker); seen != tc.relayCanRead {
				t.Fatalf("relay saw the marker: %v, want %v", seen, tc.relayCanRead)
			}
		})
	}
}

// setup runs a control server, a relay (with the tap) joined to it, and a
// destination and a source that may only use the relay, with encryption
// enc on both; it returns the source.
func setup(t *testing.T, tp *tap, enc connet.RelayEncryption) *connet.Source {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	run := func(fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("component: %v", err)
			}
		}()
	}
	log := slog.New(slog.DiscardHandler)

	cert, err := testcert.New("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := connet.NewServer(
		connet.ServerIngress(connet.Ingress{Addr: "127.0.0.1:0", Cert: cert.TLS}),
		connet.ServerRelayControlIngress(connet.Ingress{Addr: "127.0.0.1:0", Cert: cert.TLS}),
		connet.ServerRelayTokens([]string{"relay-token"}, nil),
		connet.ServerClientTokens("token-d", "token-s"),
		connet.ServerStoreDir(t.TempDir()),
	)
	if err != nil {
		t.Fatal(err)
	}
	run(func() error { return srv.Run(ctx) })

	id, err := identity.Generate("relay")
	if err != nil {
		t.Fatal(err)
	}
	key := relay.LoadGrantKey("")
	r, err := relay.New(relay.Config{
		Ingresses: []relay.Ingress{{Ingress: ingress.Ingress{Addr: "127.0.0.1:0"}}},
		Identity:  id,
		QUIC:      tuning.QUIC(0),
		Logger:    log,
		GrantKey:  key.Get,
		Tap:       tp.see,
	})
	if err != nil {
		t.Fatal(err)
	}
	run(func() error { return r.Run(ctx) })
	relayAddr := r.Addrs(ctx)[0].String()
	run(func() error {
		return relay.Join(ctx, relay.JoinConfig{
			ControlAddr: srv.RelayControlAddrs(ctx)[0].String(),
			TLS: &tls.Config{
				MinVersion: tls.VersionTLS13, RootCAs: cert.Pool, ServerName: "127.0.0.1",
				Certificates: []tls.Certificate{id.Cert},
			},
			QUIC:      tuning.QUIC(0),
			Token:     "relay-token",
			Hostports: []string{relayAddr},
			Key:       key,
			Logger:    log,
		})
	})

	connect := func(token string) *connet.Client {
		c, err := connet.Connect(ctx,
			connet.ClientToken(token),
			connet.ClientControlAddress(srv.Addrs(ctx)[0].String()),
			connet.ClientControlCAs(cert.Pool),
			connet.ClientDirectAddress("127.0.0.1:0"),
			connet.ClientRelayEncryptions(enc),
			connet.ClientNatPMP(connet.NatPMPDisabled),
		)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	dc, sc := connect("token-d"), connect("token-s")
	dst, err := dc.Destination(ctx, connet.NewDestinationConfig("echo").WithRoute(connet.RouteRelay))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			conn, err := dst.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.Copy(conn, conn)
			}()
		}
	}()
	src, err := sc.Source(ctx, connet.NewSourceConfig("echo"))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// dial retries while the relay path is still coming up.
func dial(t *testing.T, src *connet.Source) net.Conn {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := src.Dial(ctx)
		cancel()
		if err == nil {
			return conn
		}
		if !errors.Is(err, connet.ErrNoDestination) || time.Now().After(deadline) {
			t.Fatalf("dial: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
