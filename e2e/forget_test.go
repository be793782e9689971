package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
)

// TestNATForgetsIdle leaves a tunnel idle for longer than its NATs keep a
// silent UDP flow (natlab.ShortUDPTimeout): the clients' keepalives must
// hold the mappings, so the open connection and a new one both still work,
// over the direct path.
func TestNATForgetsIdle(t *testing.T) {
	d := newDeployment(t, natlab.ConeForgetful)
	d.serveEcho()
	d.startServer()
	d.startDestination("any")
	d.startSource("any")
	conn, err := d.dialEchoEventually(fetchLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, _, err := waitStatus(d.lab.B, pathLimit, hasDirect); err != nil {
		t.Fatal(err)
	}
	router := d.lab.A.NAT.Router
	peerFlow := func() (natlab.Flow, bool) {
		for _, f := range d.lab.UDPFlows(t, router) {
			if strings.Contains(f.Line, "dst="+d.lab.B.PublicAddr.String()+" ") {
				return f, true
			}
		}
		return natlab.Flow{}, false
	}
	f, ok := peerFlow()
	if !ok {
		t.Fatal("no flow between A and B in A's NAT")
	}
	// The NAT really is forgetful: the flow is kept only briefly.
	if f.Expires > natlab.ShortUDPTimeout {
		t.Fatalf("A's NAT keeps the peer flow for %v, want at most %v: %s", f.Expires, natlab.ShortUDPTimeout, f.Line)
	}

	idle := natlab.ShortUDPTimeout + 4*time.Second
	t.Logf("idle for %v; the NATs forget a silent flow after %v", idle, natlab.ShortUDPTimeout)
	time.Sleep(idle)

	if _, ok := peerFlow(); !ok {
		t.Fatal("A's NAT forgot the flow to B while the tunnel was idle: keepalives did not hold it")
	}
	d.lab.ResetPeerTraffic(t)
	if err := conn.roundTrip("after idle"); err != nil {
		t.Fatalf("the connection opened before the idle period: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fresh, err := d.dialEcho(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := fresh.roundTrip("new after idle"); err != nil {
		t.Fatalf("a connection opened after the idle period: %v", err)
	}
	st, _, err := waitStatus(d.lab.B, time.Second, hasDirect)
	if err != nil {
		t.Fatal(err)
	}
	if traffic := d.lab.PeerTraffic(t); !traffic.Direct() {
		t.Fatalf("after the idle period the tunnel's packets did not cross directly: %s", traffic)
	}
	t.Logf("MEASURE topology=%s idle_s=%.0f outcome=direct paths=%+v", d.lab.Topology, idle.Seconds(), sourcePaths(st))
}

// Paced stream of TestNATForgetsMidTransfer: chunkCount chunks of
// chunkSize bytes, one every chunkEvery, about 3 s in all; the NATs forget
// everything after forgetAfter.
const (
	chunkSize   = 16 << 10
	chunkCount  = 300
	chunkEvery  = 10 * time.Millisecond
	forgetAfter = time.Second
	// transferLimit bounds the whole transfer, stall included: past the
	// QUIC idle timeout (30 s), a stall that never recovers fails.
	transferLimit = 60 * time.Second
)

// TestNATForgetsMidTransfer empties the conntrack tables of every NAT
// router in the middle of a transfer through the tunnel: the transfer
// must complete intact. In Cone the direct path's mappings come back with
// the same ports at the next packet out; in Symmetric the relayed
// connection's mapping comes back with a new port, which the relay takes
// as a migration of its QUIC peer. The longest stall is measured.
func TestNATForgetsMidTransfer(t *testing.T) {
	for _, tc := range []struct {
		topo natlab.Topology
		// after is the path the source must show once the transfer is over.
		after func(st connet.ClientStatus) bool
	}{
		{natlab.Cone, hasDirect},
		{natlab.Symmetric, hasRelay},
	} {
		t.Run(tc.topo.String(), func(t *testing.T) {
			d := newDeployment(t, tc.topo)
			servePaced(t, d.lab.A)
			d.startServer()
			d.startDestination("any")
			d.startSource("any")
			if _, _, err := waitStatus(d.lab.B, pathLimit, tc.after); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), transferLimit)
			defer cancel()
			conn, err := d.lab.B.DialTCP(ctx, "127.0.0.1:"+sourcePort)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if dl, ok := ctx.Deadline(); ok {
				_ = conn.SetDeadline(dl)
			}

			// Read in the background; the test goroutine flushes the NATs
			// (ForgetAll may end the test) forgetAfter into the data.
			type result struct {
				stall, stallAt, took time.Duration
				err                  error
			}
			done := make(chan result, 1)
			flowing := make(chan time.Time, 1)
			go func() {
				var r result
				r.stall, r.stallAt, r.took, r.err = readPaced(conn, flowing)
				done <- r
			}()
			var first time.Time
			select {
			case first = <-flowing:
			case r := <-done:
				t.Fatalf("no data: %v", r.err)
			}
			time.Sleep(time.Until(first.Add(forgetAfter)))
			d.lab.ForgetAll(t)
			r := <-done
			stall, stallAt, took := r.stall, r.stallAt, r.took
			if r.err != nil {
				t.Fatalf("transfer broke after %v (longest stall %v at %v): %v", took, stall, stallAt, r.err)
			}
			st, _, err := waitStatus(d.lab.B, pathLimit, tc.after)
			if err != nil {
				t.Fatal(err)
			}
			paths := sourcePaths(st)
			t.Logf("MEASURE topology=%s flush_at_ms=%d stall_ms=%d stall_at_ms=%d transfer_ms=%d bytes=%d path_after=%s",
				tc.topo, forgetAfter.Milliseconds(), stall.Milliseconds(), stallAt.Milliseconds(), took.Milliseconds(),
				chunkSize*chunkCount, paths[0].Kind)
		})
	}
}

// servePaced serves the paced stream on A's service port: chunk i starts
// with i (8 bytes, big endian) followed by the byte i%251 repeated, so the
// reader can tell a lost, repeated or corrupted chunk.
func servePaced(t *testing.T, h *natlab.Host) {
	serveTCP(t, h, "127.0.0.1:"+servicePort, func(conn net.Conn) {
		tick := time.NewTicker(chunkEvery)
		defer tick.Stop()
		for i := range chunkCount {
			if _, err := conn.Write(pacedChunk(i)); err != nil {
				return
			}
			<-tick.C
		}
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		// Wait for the reader to close, so the end is not a reset.
		_, _ = io.Copy(io.Discard, conn)
	})
}

func pacedChunk(i int) []byte {
	b := make([]byte, chunkSize)
	binary.BigEndian.PutUint64(b, uint64(i))
	for j := 8; j < len(b); j++ {
		b[j] = byte(i % 251)
	}
	return b
}

// readPaced reads and checks the whole paced stream. It sends the time of
// the first read on flowing, and returns the longest time between two
// reads, when it began and how long the transfer took, all counted from
// the first read.
func readPaced(conn net.Conn, flowing chan<- time.Time) (stall, stallAt, took time.Duration, err error) {
	var start, last time.Time
	buf := make([]byte, chunkSize)
	for i := range chunkCount {
		if _, err := io.ReadFull(readerFunc(func(p []byte) (int, error) {
			n, err := conn.Read(p)
			now := time.Now()
			switch {
			case start.IsZero():
				start = now
				flowing <- now
			case now.Sub(last) > stall:
				stall, stallAt = now.Sub(last), last.Sub(start)
			}
			last = now
			return n, err
		}), buf); err != nil {
			return stall, stallAt, time.Since(start), fmt.Errorf("chunk %d of %d: %w", i, chunkCount, err)
		}
		if want := pacedChunk(i); !bytes.Equal(buf, want) {
			return stall, stallAt, time.Since(start), fmt.Errorf("chunk %d differs from what was sent", i)
		}
	}
	var one [1]byte
	if n, err := conn.Read(one[:]); n != 0 || err != io.EOF {
		return stall, stallAt, time.Since(start), fmt.Errorf("after the last chunk: %d bytes, %v; want EOF", n, err)
	}
	return stall, stallAt, time.Since(start), nil
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
