package forward

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
	"github.com/p2pconnet/connet/internal/tunnel"
)

// fakeTunnel stands in for connet.Destination: each TCP connection made to
// its front address is one tunnelled connection, whose RemoteAddr is the
// origin (the client of a far-away source), as connet presents it.
type fakeTunnel struct {
	ln     net.Listener
	origin netip.AddrPort
	// accepted counts the tunnelled connections handed out.
	accepted atomic.Int64
	// dialErrs receives the result of every dial Serve makes.
	dialErrs chan error
	// serviceErrs receives what the destination reports with
	// ReportServiceError.
	serviceErrs chan error
}

func newFakeTunnel(t *testing.T, origin netip.AddrPort) *fakeTunnel {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return &fakeTunnel{ln: ln, origin: origin, dialErrs: make(chan error, 100), serviceErrs: make(chan error, 100)}
}

// Addr is where a test client connects to open a tunnelled connection.
func (f *fakeTunnel) Addr() string { return f.ln.Addr().String() }

type originConn struct {
	*net.TCPConn
	origin net.Addr
}

func (c originConn) RemoteAddr() net.Addr { return c.origin }

func (f *fakeTunnel) AcceptContext(ctx context.Context) (net.Conn, error) {
	stop := context.AfterFunc(ctx, func() { _ = f.ln.Close() })
	defer stop()
	c, err := f.ln.Accept()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	f.accepted.Add(1)
	var origin net.Addr = &net.TCPAddr{} // what connet shows for an unknown origin does not matter here
	if f.origin.IsValid() {
		origin = net.TCPAddrFromAddrPort(f.origin)
	}
	return originConn{c.(*net.TCPConn), origin}, nil
}

// Serve dials before handing the connection over, as connet does: a failed
// dial closes the client's connection.
func (f *fakeTunnel) Serve(ctx context.Context, dial DialFunc) error {
	for {
		c, err := f.AcceptContext(ctx)
		if err != nil {
			return err
		}
		go func() {
			svc, err := dial(ctx, f.origin)
			f.dialErrs <- err
			if err != nil {
				_ = c.Close()
				return
			}
			tunnel.Splice(tunnel.TCP(c), tunnel.TCP(svc))
		}()
	}
}

// ReportServiceError keeps err for serviceErr (dropped when 100 wait).
func (f *fakeTunnel) ReportServiceError(err error) {
	select {
	case f.serviceErrs <- err:
	default:
	}
}

// serviceErrCount is how many service errors were reported and not taken.
func (f *fakeTunnel) serviceErrCount() int { return len(f.serviceErrs) }

// nextServiceErr waits for the next reported service error.
func (f *fakeTunnel) nextServiceErr(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f.serviceErrs:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("no service error reported within 30s")
		return nil
	}
}

// nextDialErr waits for the result of the next dial.
func (f *fakeTunnel) nextDialErr(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f.dialErrs:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("no dial within 30s")
		return nil
	}
}

var testOrigin = netip.MustParseAddrPort("203.0.113.7:4567")

// startDestination builds a destination from settings and serves it on a
// fake tunnel until the test ends; it checks that Serve returns then.
func startDestination(t *testing.T, d config.DestinationSettings, origin netip.AddrPort) *fakeTunnel {
	t.Helper()
	dst, err := NewDestination(d, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ft := newFakeTunnel(t, origin)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dst.Serve(ctx, ft) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return within 30s of its context ending")
		}
	})
	return ft
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// testLogger logs to t.Log until the test's cleanups are done; goroutines
// that outlive them (a hijacked connection winding down) log nowhere.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func urlParse(raw string) (*url.URL, error) { return url.Parse(raw) }
