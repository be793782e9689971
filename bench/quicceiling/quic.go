package main

import (
	"context"
	"encoding/binary"
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

// receive serves one connection: every stream is read to its end and
// answered with the number of bytes read (8 bytes, big-endian). It prints
// "ADDR CERT" first, then returns when the sender closes the connection.
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
	fmt.Fprintf(announce, "%s %s\n", tr.Conn.LocalAddr(), hex.EncodeToString(id.DER()))
	conn, err := ln.Accept(ctx)
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
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
		wg.Go(func() { sink(s) })
	}
}

// sink reads s to its end and answers with the count.
func sink(s *quic.Stream) {
	buf := make([]byte, chunk)
	var n uint64
	for {
		k, err := s.Read(buf)
		n += uint64(k)
		if err != nil {
			break
		}
	}
	_ = binary.Write(s, binary.BigEndian, n)
	_ = s.Close()
}

// send dials addr, pinning der, writes on streams parallel streams for
// duration and returns the MB/s the receiver acknowledged.
func send(ctx context.Context, addr string, der []byte, streams int, duration time.Duration) (float64, error) {
	id, err := identity.Generate("quicceiling-sender")
	if err != nil {
		return 0, err
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return 0, err
	}
	tr, err := transport(ctx, ":0")
	if err != nil {
		return 0, err
	}
	defer tr.Close()
	conn, err := tr.Dial(ctx, raddr, id.PinnedClientConfig(der, wire.ALPNPeer), tuning.QUIC(0))
	if err != nil {
		return 0, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.CloseWithError(0, "done")

	counts := make([]uint64, streams)
	errs := make([]error, streams)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range streams {
		wg.Go(func() { counts[i], errs[i] = sendStream(ctx, conn, start.Add(duration)) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	var total uint64
	for _, c := range counts {
		total += c
	}
	return float64(total) / elapsed.Seconds() / 1e6, nil
}

// sendStream writes on a new stream until end, then returns the count the
// receiver acknowledged.
func sendStream(ctx context.Context, conn *quic.Conn, end time.Time) (uint64, error) {
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return 0, fmt.Errorf("open stream: %w", err)
	}
	buf := make([]byte, chunk)
	for time.Now().Before(end) {
		if _, err := s.Write(buf); err != nil {
			return 0, fmt.Errorf("write: %w", err)
		}
	}
	if err := s.Close(); err != nil {
		return 0, err
	}
	_ = s.SetReadDeadline(time.Now().Add(30 * time.Second))
	var n uint64
	if err := binary.Read(s, binary.BigEndian, &n); err != nil {
		return 0, fmt.Errorf("receiver did not acknowledge: %w", err)
	}
	if n == 0 {
		return 0, errors.New("receiver got nothing")
	}
	return n, nil
}
