package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
)

// resetLimit is how soon after a peer dies the applications on the other
// side must see their connections reset (issue 16: within 12 s; the
// silence limit is 7 s).
const resetLimit = 12 * time.Second

// noPeerLimit bounds how long a source takes to answer a connection when
// it knows no live peer: at once, with a margin for a loaded machine.
const noPeerLimit = 3 * time.Second

// TestPeerDeathResets kills, restarts and stops the clients at either end
// of live tunnelled connections, on a direct and a relayed path at once,
// and checks that the applications at the other end (and, for a stop, at
// both ends) see a TCP reset within resetLimit: never a clean end of data,
// which would pass a cut stream off as complete. Then it opens new
// connections to a destination that was killed: they are answered without
// waiting on the dead peer.
func TestPeerDeathResets(t *testing.T) {
	d := newDeployment(t, natlab.Cone)
	d.startServer()
	svc := newFlowService(t, d.lab.A)
	d.writeDirectAndRelayed(sourcePort, relayedSourcePort)
	dst := d.startClient(d.lab.A, "destination", d.path("destination.toml"))
	src := d.startClient(d.lab.B, "source", d.path("source.toml"))
	// bothPaths waits until B's sources reach the destination now running
	// on A, and no other, on a direct and a relayed path.
	bothPaths := func(t *testing.T) {
		t.Helper()
		own, _, err := waitStatus(d.lab.A, pathLimit, func(st connet.ClientStatus) bool { return st.Control.Connected })
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := waitStatus(d.lab.B, pathLimit, func(st connet.ClientStatus) bool { return directAndRelayedUp(st, own.ID) }); err != nil {
			t.Fatal(err)
		}
	}
	bothPaths(t)
	restart := func(t *testing.T, name string, h *natlab.Host, config string) *natlab.Proc {
		t.Helper()
		p := d.startClient(h, name, d.path(config))
		bothPaths(t)
		return p
	}
	// open starts two transfers through each source, one each way, and
	// returns their receiving ends: at the source's applications (data
	// from the service) and at the service (data from the applications).
	open := func(t *testing.T) (atApps, atService []*receiver) {
		t.Helper()
		for _, port := range []string{sourcePort, relayedSourcePort} {
			atApps = append(atApps, dialFlow(t, d.lab.B, port, down))
			atService = append(atService, svc.await(t, dialFlow(t, d.lab.B, port, up).name))
		}
		return atApps, atService
	}
	expectResets := func(t *testing.T, what string, since time.Time, ends ...*receiver) {
		t.Helper()
		for _, e := range ends {
			took, err := e.wait(since, resetLimit)
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("%s: %s ended with %v after %v; want a connection reset", what, e.name, err, took.Round(time.Millisecond))
				continue
			}
			t.Logf("MEASURE %s: %s reset after %d ms", what, e.name, took.Milliseconds())
		}
	}

	t.Run("destination killed", func(t *testing.T) {
		atApps, _ := open(t)
		killed := time.Now()
		_ = dst.Kill()
		expectResets(t, "kill -9 of the destination", killed, atApps...)
		dst = restart(t, "destination", d.lab.A, "destination.toml")
	})
	t.Run("source killed", func(t *testing.T) {
		_, atService := open(t)
		killed := time.Now()
		_ = src.Kill()
		expectResets(t, "kill -9 of the source", killed, atService...)
		src = restart(t, "source", d.lab.B, "source.toml")
	})
	t.Run("destination restarted", func(t *testing.T) {
		// The new process has the old one's stateless reset key (from its
		// cache directory) and direct address, so the source's next packet
		// on the direct path is answered with a stateless reset.
		atApps, _ := open(t)
		killed := time.Now()
		_ = dst.Kill()
		dst = d.startClient(d.lab.A, "destination", d.path("destination.toml"))
		expectResets(t, "restart of the destination", killed, atApps...)
		bothPaths(t)
	})
	t.Run("source stopped", func(t *testing.T) {
		atApps, atService := open(t)
		stopped := time.Now()
		if err := src.Stop(); err != nil {
			t.Logf("source exit: %v", err)
		}
		expectResets(t, "SIGTERM of the source", stopped, append(atApps, atService...)...)
		src = restart(t, "source", d.lab.B, "source.toml")
	})
	t.Run("destination stopped", func(t *testing.T) {
		atApps, atService := open(t)
		stopped := time.Now()
		if err := dst.Stop(); err != nil {
			t.Logf("destination exit: %v", err)
		}
		expectResets(t, "SIGTERM of the destination", stopped, append(atApps, atService...)...)
		dst = restart(t, "destination", d.lab.A, "destination.toml")
	})
	t.Run("new connections to a dead destination", func(t *testing.T) {
		killed := time.Now()
		_ = dst.Kill()
		// A second after the kill nothing has noticed yet: the new
		// connections wait on the dead peer, but no longer than the
		// silence limit.
		time.Sleep(time.Second)
		expectResets(t, "new connection 1 s after kill -9", killed,
			dialFlow(t, d.lab.B, sourcePort, down), dialFlow(t, d.lab.B, relayedSourcePort, down))
		// Once the source shows no usable path to the dead peer, a new
		// connection does not wait at all.
		if _, _, err := waitStatus(d.lab.B, pathLimit, func(st connet.ClientStatus) bool { return !anyLivePath(st) }); err != nil {
			t.Fatal(err)
		}
		for _, port := range []string{sourcePort, relayedSourcePort} {
			asked := time.Now()
			took, err := dialAnswer(t, d.lab.B, port, asked)
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("a connection to a dead destination on %s ended with %v after %v; want a reset at once", port, err, took)
			}
			t.Logf("MEASURE new connection to a dead destination on %s answered after %d ms", port, took.Milliseconds())
		}
	})
}

// directAndRelayedUp: B's "web" source has a direct path to the
// destination peer, and its "relayed" source a relayed one; no other peer
// has a path (a destination killed before would still be picked until the
// control server and the relay notice its silence).
func directAndRelayedUp(st connet.ClientStatus, peer string) bool {
	up := map[string]bool{}
	for _, s := range st.Sources {
		for _, p := range s.Peers {
			if len(p.Paths) > 0 && p.ID != peer {
				return false
			}
			for _, pp := range p.Paths {
				switch {
				case pp.Stale:
				case s.Name == "web" && (pp.Kind == "direct-outgoing" || pp.Kind == "direct-incoming"):
					up["web"] = true
				case s.Name == "relayed" && pp.Kind == "relay":
					up["relayed"] = true
				}
			}
		}
	}
	return up["web"] && up["relayed"]
}

// anyLivePath: some source of st still shows a path that is not stale.
func anyLivePath(st connet.ClientStatus) bool {
	for _, s := range st.Sources {
		for _, p := range s.Peers {
			for _, pp := range p.Paths {
				if !pp.Stale {
					return true
				}
			}
		}
	}
	return false
}

// A flow is one tunnelled connection carrying a trickle of data one way:
// down from the service to the application, or up from the application to
// the service. The sending end only writes and the receiving end only
// reads, so that the receiver's read is what learns how the connection
// ended (a socket reports a reset once: to a concurrent write, a read
// would see a plain end afterwards).
type direction string

const (
	down direction = "down"
	up   direction = "up"
)

// receiver is the reading end of a flow; ended receives how reading ended
// (io.EOF for a clean end), and done is closed then.
type receiver struct {
	name  string
	ended chan error
	done  chan struct{}
}

func receive(name string, conn net.Conn, r io.Reader) *receiver {
	e := &receiver{name: name, ended: make(chan error, 1), done: make(chan struct{})}
	go func() {
		defer close(e.done)
		defer conn.Close()
		_, err := io.Copy(io.Discard, r)
		if err == nil {
			err = io.EOF
		}
		e.ended <- err
	}()
	return e
}

// send writes a trickle to conn until a write fails.
func send(conn net.Conn) {
	go func() {
		chunk := make([]byte, 1024)
		for {
			if _, err := conn.Write(chunk); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
}

// wait waits until limit after since for the end, and returns it with how
// long after since it came.
func (e *receiver) wait(since time.Time, limit time.Duration) (time.Duration, error) {
	select {
	case err := <-e.ended:
		return time.Since(since), err
	case <-time.After(time.Until(since.Add(limit))):
		return limit, fmt.Errorf("still open %v later", limit)
	}
}

// dialFlow connects an application to the source at port on h, names its
// flow in a first line, and starts it. For an up flow it returns the
// receiver the service will have (see flowService.await), by name only.
func dialFlow(t *testing.T, h *natlab.Host, port string, dir direction) *receiver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := h.DialTCP(ctx, "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	name := fmt.Sprintf("%s-%s-%d", dir, port, time.Now().UnixNano())
	if _, err := fmt.Fprintf(conn, "%s\n", name); err != nil {
		t.Fatal(err)
	}
	if dir == up {
		send(conn)
		return &receiver{name: name}
	}
	return receive("application of "+name, conn, conn)
}

// dialAnswer connects to the source at port on h and waits up to
// noPeerLimit after asked for the connection to end; a source that has no
// tunnel to offer may reset it before the dial returns.
func dialAnswer(t *testing.T, h *natlab.Host, port string, asked time.Time) (time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), noPeerLimit)
	defer cancel()
	conn, err := h.DialTCP(ctx, "127.0.0.1:"+port)
	if err != nil {
		return time.Since(asked), err
	}
	t.Cleanup(func() { _ = conn.Close() })
	// Nothing is written: a write that met the reset would take the
	// error, and the read after it would see a plain end.
	return receive("late", conn, conn).wait(asked, noPeerLimit)
}

// flowService is A's service: it reads a flow's name, then sends (down)
// or receives (up).
type flowService struct {
	mu        sync.Mutex
	receivers map[string]*receiver
	added     chan struct{}
}

func newFlowService(t *testing.T, h *natlab.Host) *flowService {
	s := &flowService{receivers: map[string]*receiver{}, added: make(chan struct{}, 64)}
	serveTCP(t, h, "127.0.0.1:"+servicePort, func(conn net.Conn) {
		r := bufio.NewReader(conn)
		name, err := r.ReadString('\n')
		if err != nil {
			return
		}
		name = strings.TrimSuffix(name, "\n")
		if strings.HasPrefix(name, string(down)) {
			send(conn)
			// serveTCP closes conn when this returns: wait for the end.
			_, _ = io.Copy(io.Discard, r)
			return
		}
		e := receive("service of "+name, conn, r)
		s.mu.Lock()
		s.receivers[name] = e
		s.mu.Unlock()
		s.added <- struct{}{}
		// serveTCP closes conn when this returns: the receiver does.
		<-e.done
	})
	return s
}

// await returns the service's receiver of the up flow app started.
func (s *flowService) await(t *testing.T, name string) *receiver {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		e := s.receivers[name]
		s.mu.Unlock()
		if e != nil {
			return e
		}
		select {
		case <-s.added:
		case <-deadline:
			t.Fatalf("the service got no connection %q", name)
			return nil
		}
	}
}
