package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// What a workload asks of the receiver, in the first byte of each stream
// (or TCP connection).
const (
	kindBulk    = 'b' // read to the end, answer with the count
	kindRequest = 'r' // answer every request with a response, until the end
	kindConnect = 'c' // answer one request with a response, then end
)

// Sizes of the request-response workloads: a small HTTP request such as
// wrk's and the short response of the lab's service, headers included.
const (
	requestSize  = 64
	responseSize = 140
)

// stream is one stream of a QUIC connection or one TCP connection: what
// the workloads use of either.
type stream interface {
	io.ReadWriter
	// CloseWrite ends what this side sends; reading goes on.
	CloseWrite() error
	// Close ends both directions.
	Close() error
}

// opener opens a stream to the receiver.
type opener func(ctx context.Context) (stream, error)

// serve answers the workload a stream names in its first byte.
func serve(s stream) {
	defer s.Close()
	var kind [1]byte
	if _, err := io.ReadFull(s, kind[:]); err != nil {
		return
	}
	switch kind[0] {
	case kindBulk:
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
	case kindRequest, kindConnect:
		req, resp := make([]byte, requestSize), make([]byte, responseSize)
		for {
			if _, err := io.ReadFull(s, req); err != nil {
				return
			}
			if _, err := s.Write(resp); err != nil {
				return
			}
			if kind[0] == kindConnect {
				// As a server that closes after its response: the end
				// follows it, then the client's end is awaited.
				_ = s.CloseWrite()
				_, _ = io.Copy(io.Discard, s)
				return
			}
		}
	}
}

// bulk writes on streams parallel streams until duration has passed and
// returns the MB/s the receiver acknowledged.
func bulk(ctx context.Context, open opener, streams int, duration time.Duration) (float64, error) {
	counts, elapsed, err := onStreams(streams, duration, func(end time.Time) (uint64, error) {
		return bulkStream(ctx, open, end)
	})
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, c := range counts {
		total += c
	}
	return float64(total) / elapsed.Seconds() / 1e6, nil
}

// onStreams runs work on streams parallel streams, each until end (duration
// from now), and returns their results and how long they took together.
func onStreams[T any](streams int, duration time.Duration, work func(end time.Time) (T, error)) ([]T, time.Duration, error) {
	results := make([]T, streams)
	errs := make([]error, streams)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range streams {
		wg.Go(func() { results[i], errs[i] = work(start.Add(duration)) })
	}
	wg.Wait()
	return results, time.Since(start), errors.Join(errs...)
}

// bulkStream writes on a new stream until end, then returns the count the
// receiver acknowledged.
func bulkStream(ctx context.Context, open opener, end time.Time) (uint64, error) {
	s, err := open(ctx)
	if err != nil {
		return 0, fmt.Errorf("open stream: %w", err)
	}
	defer s.Close()
	buf := make([]byte, chunk)
	buf[0] = kindBulk
	first := true
	for time.Now().Before(end) {
		if _, err := s.Write(buf); err != nil {
			return 0, fmt.Errorf("write: %w", err)
		}
		if first {
			buf[0], first = 0, false
		}
	}
	if err := s.CloseWrite(); err != nil {
		return 0, err
	}
	var n uint64
	if err := binary.Read(s, binary.BigEndian, &n); err != nil {
		return 0, fmt.Errorf("receiver did not acknowledge: %w", err)
	}
	if n == 0 {
		return 0, errors.New("receiver got nothing")
	}
	return n, nil
}

// latencies is what a request-response workload measured.
type latencies struct {
	count    int
	elapsed  time.Duration
	p50, p99 time.Duration
}

func newLatencies(times []time.Duration, elapsed time.Duration) latencies {
	slices.Sort(times)
	at := func(q float64) time.Duration { return times[int(q*float64(len(times)-1))] }
	return latencies{count: len(times), elapsed: elapsed, p50: at(0.5), p99: at(0.99)}
}

// requests keeps streams parallel streams busy with one request and its
// response after another until duration has passed, as wrk does with its
// connections.
func requests(ctx context.Context, open opener, streams int, duration time.Duration) (latencies, error) {
	times, elapsed, err := onStreams(streams, duration, func(end time.Time) ([]time.Duration, error) {
		return requestStream(ctx, open, end)
	})
	if err != nil {
		return latencies{}, err
	}
	return newLatencies(slices.Concat(times...), elapsed), nil
}

func requestStream(ctx context.Context, open opener, end time.Time) ([]time.Duration, error) {
	s, err := open(ctx)
	if err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	defer s.Close()
	if _, err := s.Write([]byte{kindRequest}); err != nil {
		return nil, err
	}
	req, resp := make([]byte, requestSize), make([]byte, responseSize)
	var times []time.Duration
	for time.Now().Before(end) {
		t := time.Now()
		if err := exchange(s, req, resp); err != nil {
			return nil, err
		}
		times = append(times, time.Since(t))
	}
	if len(times) == 0 {
		return nil, errors.New("no request completed")
	}
	return times, nil
}

// connects opens one stream after another until duration has passed, each
// carrying one request and its response to the stream's end, as a client
// that opens a connection per request does; the time counted is from the
// open to the end.
func connects(ctx context.Context, open opener, duration time.Duration) (latencies, error) {
	req, resp := make([]byte, 1+requestSize), make([]byte, responseSize)
	req[0] = kindConnect
	var times []time.Duration
	start := time.Now()
	for time.Since(start) < duration {
		t := time.Now()
		s, err := open(ctx)
		if err != nil {
			return latencies{}, fmt.Errorf("open stream: %w", err)
		}
		err = exchange(s, req, resp)
		if err == nil {
			// The receiver ends the stream after its response.
			if n, rerr := s.Read(resp[:1]); n != 0 || !errors.Is(rerr, io.EOF) {
				err = fmt.Errorf("want the end after the response, got %d bytes, %v", n, rerr)
			}
		}
		_ = s.Close()
		if err != nil {
			return latencies{}, err
		}
		times = append(times, time.Since(t))
	}
	return newLatencies(times, time.Since(start)), nil
}

// exchange writes req and reads a whole response into resp.
func exchange(s stream, req, resp []byte) error {
	if _, err := s.Write(req); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	if _, err := io.ReadFull(s, resp); err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	return nil
}
