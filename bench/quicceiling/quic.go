package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/tuning"
	"github.com/p2pconnet/connet/internal/wire"
)

// chunk is the size of each Write and Read: the big buffer a tunnel's
// splice copies through, so the ceiling makes the same calls per byte.
const chunk = 64 << 10

// transport opens a UDP socket the way a connet client does (a plain
// net.ListenConfig socket handed to a quic.Transport, which sizes its
// buffers itself).
func transport(ctx context.Context, addr string) (*quic.Transport, error) {
	pc, err := (&net.ListenConfig{}).ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return &quic.Transport{Conn: pc}, nil
}

// quicStream is a QUIC stream as the workloads use it.
type quicStream struct{ *quic.Stream }

func (s quicStream) CloseWrite() error { return s.Stream.Close() }

func (s quicStream) Close() error {
	s.CancelRead(0)
	return s.Stream.Close()
}

// receive serves one QUIC connection, and TCP connections on the same
// address (another port) for the TCP reference, answering each stream's
// workload (see serve). It prints "ADDR CERT TCPADDR" first, then returns
// when the sender closes the QUIC connection.
func receive(ctx context.Context, addr string, announce io.Writer) error {
	id, err := identity.Generate("quicceiling-receiver")
	if err != nil {
		return err
	}
	tr, err := transport(ctx, addr)
	if err != nil {
		return err
	}
	defer tr.Close()
	anyone := func(context.Context, identity.ID) bool { return true }
	ln, err := tr.Listen(id.PinnedServerConfig(wire.ALPNPeer, anyone, time.Second), tuning.QUIC(0))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	host, _, err := net.SplitHostPort(tr.Conn.LocalAddr().String())
	if err != nil {
		return err
	}
	tln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return fmt.Errorf("listen on tcp: %w", err)
	}
	fmt.Fprintf(announce, "%s %s %s\n", tr.Conn.LocalAddr(), hex.EncodeToString(id.DER()), tln.Addr())

	var wg sync.WaitGroup
	defer wg.Wait()
	defer tln.Close()
	wg.Go(func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serve(c.(*net.TCPConn)) })
		}
	})
	conn, err := ln.Accept(ctx)
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	for {
		s, err := conn.AcceptStream(ctx)
		if err != nil {
			// The sender closing the connection is the normal end.
			var appErr *quic.ApplicationError
			if errors.As(err, &appErr) && appErr.ErrorCode == 0 {
				return nil
			}
			return fmt.Errorf("accept stream: %w", err)
		}
		wg.Go(func() { serve(quicStream{s}) })
	}
}

// dial connects to the receiver at addr, pinning der, and returns an
// opener of streams on that QUIC connection, or with tcpAddr set of TCP
// connections to it (the reference; the QUIC connection then only bounds
// the receiver's life). close ends the connection and, with it, the
// receiver.
func dial(ctx context.Context, addr string, der []byte, tcpAddr string) (open opener, close func(), err error) {
	id, err := identity.Generate("quicceiling-sender")
	if err != nil {
		return nil, nil, err
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, nil, err
	}
	tr, err := transport(ctx, ":0")
	if err != nil {
		return nil, nil, err
	}
	conn, err := tr.Dial(ctx, raddr, id.PinnedClientConfig(der, wire.ALPNPeer), tuning.QUIC(0))
	if err != nil {
		_ = tr.Close()
		return nil, nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	close = func() {
		_ = conn.CloseWithError(0, "done")
		_ = tr.Close()
	}
	if tcpAddr != "" {
		var d net.Dialer
		return func(ctx context.Context) (stream, error) {
			c, err := d.DialContext(ctx, "tcp", tcpAddr)
			if err != nil {
				return nil, err
			}
			return c.(*net.TCPConn), nil
		}, close, nil
	}
	return func(ctx context.Context) (stream, error) {
		s, err := conn.OpenStreamSync(ctx)
		if err != nil {
			return nil, err
		}
		return quicStream{s}, nil
	}, close, nil
}
