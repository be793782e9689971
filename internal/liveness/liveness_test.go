package liveness

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/simnet"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/quic-go/quic-go"
)

// TestStaleOnVirtualTime: Health turns stale only after tuning.StaleAfter
// without a new packet, and a packet makes it fresh again. In a synctest
// bubble time.Sleep advances the fake clock, so this takes no real time.
func TestStaleOnVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &Health{since: time.Now()}
		time.Sleep(tuning.StaleAfter)
		if h.Stale() {
			t.Fatal("stale at exactly StaleAfter")
		}
		h.observe(0, time.Now()) // same count: no packet arrived
		time.Sleep(time.Millisecond)
		if !h.Stale() {
			t.Fatal("not stale after StaleAfter of silence")
		}
		h.observe(1, time.Now())
		if h.Stale() {
			t.Fatal("still stale after a packet arrived")
		}
	})
}

// pair connects a client to a server across a simulated network and
// returns the client's connection and the network.
func pair(t *testing.T) (*quic.Conn, *simnet.Network) {
	conn, _, n := pairBoth(t)
	return conn, n
}

// pairBoth is pair that also returns the server's side of the connection.
func pairBoth(t *testing.T) (*quic.Conn, *quic.Conn, *simnet.Network) {
	t.Helper()
	n := simnet.New()
	n.SetLatency(5 * time.Millisecond)
	t.Cleanup(n.Close)
	cliID, _ := identity.Generate("client")
	srvID, _ := identity.Generate("server")
	srvPC, _ := n.Host("203.0.113.1").ListenPacket(context.Background(), "udp", ":443")
	cliPC, _ := n.Host("203.0.113.2").ListenPacket(context.Background(), "udp", ":0")
	srvTr, cliTr := &quic.Transport{Conn: srvPC}, &quic.Transport{Conn: cliPC}
	t.Cleanup(func() { _ = srvTr.Close(); _ = cliTr.Close() })
	known := func(_ context.Context, id identity.ID) bool { return id == cliID.ID }
	ln, err := srvTr.Listen(srvID.PinnedServerConfig(wire.ALPNPeer, known, time.Second), tuning.QUIC(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan *quic.Conn, 1)
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			// Keep the server side open until the transport closes.
			select {
			case accepted <- c:
			default:
			}
		}
	}()
	conn, err := cliTr.Dial(context.Background(), srvPC.LocalAddr(), cliID.PinnedClientConfig(srvID.DER(), wire.ALPNPeer), tuning.QUIC(0))
	if err != nil {
		t.Fatal(err)
	}
	return conn, <-accepted, n
}

// TestPoke: a watched connection that stops receiving in the middle of
// traffic sends a poke datagram at once (here: well before its next
// keepalive), and an idle one, exchanging only keepalives, sends none.
func TestPoke(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cli, srv, _ := pairBoth(t)
		var watching sync.WaitGroup
		defer watching.Wait() // the watch ends with the connection
		defer func() { _ = cli.CloseWithError(0, "") }()
		Watch(muxconn.FromQUIC(cli), &watching)

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := srv.ReceiveDatagram(ctx)
		cancel()
		if err == nil {
			t.Fatal("an idle connection sent a poke")
		}

		// Traffic from the server, which the client reads, then silence.
		go func() {
			st, err := cli.AcceptStream(context.Background())
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, st)
		}()
		st, err := srv.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write(make([]byte, 256<<10)); err != nil {
			t.Fatal(err)
		}
		_ = st.Close()
		sent := time.Now()
		ctx, cancel = context.WithTimeout(context.Background(), tuning.KeepAlive)
		defer cancel()
		got, err := srv.ReceiveDatagram(ctx)
		if err != nil {
			t.Fatalf("no poke within a keepalive period after the traffic stopped: %v", err)
		}
		if string(got) != string(pokeMessage) {
			t.Fatalf("poke %q, want %q", got, pokeMessage)
		}
		t.Logf("poked %v (simulated) after the last write", time.Since(sent))
	})
}

// TestCloseWhenStale runs a real QUIC connection over simnet in a synctest
// bubble. For a simulated minute keepalives keep it fresh; once the network
// drops everything, CloseWhenStale closes it StaleAfter after the last
// packet it received (which came up to one KeepAlive before the cut), give
// or take a sampling tick: seconds, where the idle timeout would take
// IdleTimeout.
func TestCloseWhenStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conn, n := pair(t)
		const code = 42
		var watching sync.WaitGroup
		defer watching.Wait() // the watch ends with the connection
		h := CloseWhenStale(muxconn.FromQUIC(conn), code, &watching)

		time.Sleep(time.Minute)
		if h.Stale() || conn.Context().Err() != nil {
			t.Fatalf("healthy connection: stale=%v closed=%v", h.Stale(), context.Cause(conn.Context()))
		}

		n.SetLoss(1)
		cut := time.Now()
		<-conn.Context().Done()
		took := time.Since(cut)
		if took < tuning.StaleAfter-tuning.KeepAlive || took > tuning.StaleAfter+2*healthTick {
			t.Fatalf("closed %v after the cut, want about StaleAfter (%v)", took, tuning.StaleAfter)
		}
		var appErr *quic.ApplicationError
		if err := context.Cause(conn.Context()); !errors.As(err, &appErr) || appErr.ErrorCode != code {
			t.Fatalf("closed with %v, want application error %d", err, code)
		}
		t.Logf("closed %v (simulated) after the network went silent", took)
	})
}
