package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
)

// serveEcho runs a line echo service on A's loopback, as the destination's
// service.
func (d *deployment) serveEcho() {
	d.t.Helper()
	serveTCP(d.t, d.lab.A, "127.0.0.1:"+servicePort, func(conn net.Conn) {
		_, _ = io.Copy(conn, conn)
	})
}

// echoConn is a connection through the source on B to the echo service.
type echoConn struct {
	net.Conn
	r *bufio.Reader
}

func (d *deployment) dialEcho(ctx context.Context) (*echoConn, error) {
	conn, err := d.lab.B.DialTCP(ctx, "127.0.0.1:"+sourcePort)
	if err != nil {
		return nil, err
	}
	return &echoConn{Conn: conn, r: bufio.NewReader(conn)}, nil
}

// roundTrip sends a line and checks it comes back.
func (c *echoConn) roundTrip(line string) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintln(c, line); err != nil {
		return err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return fmt.Errorf("echo returned %q, want %q", got, line)
	}
	return nil
}

// dialEchoEventually retries until a connection echoes, for at most limit.
func (d *deployment) dialEchoEventually(limit time.Duration) (*echoConn, error) {
	start := time.Now()
	var lastErr error
	for time.Since(start) < limit {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := d.dialEcho(ctx)
		cancel()
		if err == nil {
			if err = c.roundTrip("hello"); err == nil {
				return c, nil
			}
			_ = c.Close()
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("no echo within %v: %w", limit, lastErr)
}

// TestControlDownAtStart starts the clients before the server: they must
// keep retrying, not exit, and work once the server is up.
func TestControlDownAtStart(t *testing.T) {
	d := newDeployment(t, natlab.Cone)
	d.serveEcho()
	dst := d.startDestination("any")
	src := d.startSource("any")

	// The source reports it cannot reach the server, and is still running.
	if _, _, err := waitStatus(d.lab.B, pathLimit, func(st connet.ClientStatus) bool {
		return !st.Control.Connected && st.Control.LastError != ""
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*natlab.Proc{dst, src} {
		select {
		case <-p.Exited():
			t.Fatalf("%s exited while the control server was down:\n%s", p.Name, p.Output())
		default:
		}
	}

	d.startServer()
	c, err := d.dialEchoEventually(fetchLimit)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
}

// TestDirectSurvivesControlOutage stops the control server under an open
// tunnelled connection: the connection and new connections keep working
// over the established direct path, and the clients reconnect when the
// server is back.
func TestDirectSurvivesControlOutage(t *testing.T) {
	d := newDeployment(t, natlab.Cone)
	d.serveEcho()
	d.startServer()
	d.startDestination("any")
	d.startSource("any")

	// The server also runs a relay, which may carry the first connections
	// until the direct path is up; a relayed connection cannot outlive the
	// server, so open the one under test on the direct path.
	if _, _, err := waitStatus(d.lab.B, pathLimit, hasDirect); err != nil {
		t.Fatal(err)
	}
	c, err := d.dialEchoEventually(fetchLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if err := d.server.Stop(); err != nil {
		t.Logf("server exit: %v", err)
	}
	if _, _, err := waitStatus(d.lab.B, pathLimit, func(st connet.ClientStatus) bool { return !st.Control.Connected }); err != nil {
		t.Fatal(err)
	}
	if err := c.roundTrip("still here"); err != nil {
		t.Fatalf("open connection broke when the control server went away: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c2, err := d.dialEcho(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.roundTrip("new while control is down"); err != nil {
		t.Fatalf("new connection failed while the control server was down: %v", err)
	}

	d.startServer()
	if _, _, err := waitStatus(d.lab.B, pathLimit, func(st connet.ClientStatus) bool {
		return st.Control.Connected && hasDirect(st)
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.roundTrip("after the restart"); err != nil {
		t.Fatalf("open connection broke when the control server came back: %v", err)
	}
	c3, err := d.dialEchoEventually(fetchLimit)
	if err != nil {
		t.Fatal(err)
	}
	_ = c3.Close()
}
