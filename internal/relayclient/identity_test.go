package relayclient

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/testwait"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
)

// syncBuffer is a log destination the manager's goroutines write to while
// the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRelayIdentityChanged runs a relay that answers at the advertised
// address with a new identity, as one restarted without its store-dir
// does, while the control server still offers the old certificate. The
// client must say so in words an operator can act on, in its status and
// in a warning, not only as a certificate mismatch.
func TestRelayIdentityChanged(t *testing.T) {
	self, pinned, restarted := mustIdentity(t), mustIdentity(t), mustIdentity(t)

	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	relayTr := &quic.Transport{Conn: udp}
	defer func() { _ = relayTr.Close(); _ = udp.Close() }()
	ln, err := relayTr.Listen(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{restarted.Cert},
		NextProtos:   []string{wire.ALPNRelay},
		ClientAuth:   tls.RequireAnyClientCert,
	}, tuning.QUIC(0))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	cudp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	clientTr := &quic.Transport{Conn: cudp}
	defer func() { _ = clientTr.Close(); _ = cudp.Close() }()

	logs := &syncBuffer{}
	m := New(Config{
		Transport: clientTr,
		Identity:  self,
		QUIC:      tuning.QUIC(5 * time.Second),
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	// Apply alone starts the relay's connection; Run (which keeps paths
	// on peers) is not needed here.
	defer m.Close()
	m.Apply([]*pb.Relay{{Id: pinned.ID[:], Certificate: pinned.DER(), Hostports: []string{udp.LocalAddr().String()}}},
		&pb.SignedGrant{})

	const want = "relay identity changed (restarted without its store-dir?)"
	testwait.For(t, 10*time.Second, func() bool {
		st := m.Status()
		return len(st) == 1 && strings.Contains(st[0].LastError, want) && strings.Contains(logs.String(), want)
	}, "%q in the status and the log; log:\n%s", want, logs)
	if m.Status()[0].Connected {
		t.Fatal("relay with another identity shown as connected")
	}
	// One warning per change of error, not one per retry: once a retry
	// has failed the same way (logged, below warning level), there is
	// still one warning.
	testwait.For(t, 10*time.Second, func() bool { return linesWith(logs.String(), `msg="cannot reach relay, retrying"`, want) >= 2 },
		"a retry to fail with %q; log:\n%s", want, logs)
	if warned := linesWith(logs.String(), "level=WARN", want); warned != 1 {
		t.Errorf("%d warnings about the changed identity, want 1:\n%s", warned, logs)
	}
}

// linesWith counts the lines of log that contain every one of parts.
func linesWith(log string, parts ...string) int {
	n := 0
	for line := range strings.Lines(log) {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			n++
		}
	}
	return n
}
