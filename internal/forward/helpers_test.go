package forward_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/forward"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/testprog"
	"github.com/p2pconnet/connet/internal/testwait"
)

// pki is a throwaway CA with a server certificate for 127.0.0.1/localhost
// and a client certificate, plus a client certificate from another CA
// that a mutual TLS source must refuse.
type pki struct {
	*testcert.PKI
	OtherCert, OtherKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	p, err := testcert.NewPKI(dir, "connet test")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testcert.NewPKI(dir, "some other")
	if err != nil {
		t.Fatal(err)
	}
	return pki{PKI: p, OtherCert: other.ClientCert, OtherKey: other.ClientKey}
}

// logBuffer collects a source's log lines for assertions.
type logBuffer struct {
	testprog.LockedBuffer
}

// waitLog waits a bounded time for a line of the log containing all
// parts, and returns it (logging may trail what the client observed).
func (b *logBuffer) waitLog(t *testing.T, parts ...string) string {
	t.Helper()
	var found string
	testwait.For(t, 5*time.Second, func() bool {
		for line := range strings.SplitSeq(b.String(), "\n") {
			if containsAll(line, parts...) {
				found = line
				return true
			}
		}
		return false
	}, "a log line with %q in:\n%s", parts, b)
	return found
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// fakeTunnel is the DialFunc of the tests: it connects to a local service
// as a destination would, counting calls and recording origins; with fail
// set it refuses like a source without destination.
type fakeTunnel struct {
	target string
	fail   error
	calls  atomic.Int64

	mu      sync.Mutex
	origins []netip.AddrPort
}

var errNoDestination = errors.New("no destination for \"web\"")

func (f *fakeTunnel) dial(ctx context.Context, origin netip.AddrPort) (net.Conn, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.origins = append(f.origins, origin)
	f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", f.target)
}

func (f *fakeTunnel) lastOrigin() netip.AddrPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.origins) == 0 {
		return netip.AddrPort{}
	}
	return f.origins[len(f.origins)-1]
}

// startSource builds and serves a source from settings until the test
// ends, and checks that Serve then returns nil.
func startSource(t *testing.T, s config.SourceSettings, dial forward.DialFunc) (*forward.Source, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	src, err := forward.NewSource(s, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// The tests' tunnels take no early bytes from the client.
	tunnel := func(ctx context.Context, origin netip.AddrPort, _ net.Conn) (net.Conn, error) {
		return dial(ctx, origin)
	}
	go func() { done <- src.Serve(ctx, tunnel) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return src, logs
}

func settings(t *testing.T, rawURL string) config.SourceSettings {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return config.SourceSettings{Name: "web", URL: u}
}

// newSourceQuiet builds a source that the test does not serve.
func newSourceQuiet(s config.SourceSettings) (*forward.Source, error) {
	src, err := forward.NewSource(s, slog.New(slog.DiscardHandler))
	if err == nil {
		_ = src.Close()
	}
	return src, err
}
