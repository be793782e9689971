package connet_test

import (
	"bytes"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
)

// BenchmarkNewConnection measures a connection's whole life as a client of
// a request-response service sees it: dial, send a request, read the
// response to the end the service closes with. Both clients (and the
// relay) are in this process, on loopback; "raw" is the service dialed
// without a tunnel. It reports the p50 beside the mean.
func BenchmarkNewConnection(b *testing.B) {
	for _, tc := range []struct {
		name  string
		route connet.Route
	}{{"raw", ""}, {"direct", connet.RouteDirect}, {"relay", connet.RouteRelay}} {
		b.Run(tc.name, func(b *testing.B) {
			service := answeringService(b)
			addr := service
			if tc.name != "raw" {
				addr = idleTunnel(b, tc.route, service, nil)
			}
			var times []time.Duration
			for b.Loop() {
				start := time.Now()
				if err := requestOnce(addr); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(start))
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "p50-ns")
		})
	}
}

// newConnRequest and newConnResponse are what requestOnce sends and what
// answer answers.
var (
	newConnRequest  = []byte("GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
	newConnResponse = []byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
)

// answeringService listens on loopback and answers one request on every
// connection, then closes it.
func answeringService(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go answer(c)
		}
	}()
	return ln.Addr().String()
}

// answer reads a request on c, answers it and closes c.
func answer(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 512)
	if _, err := c.Read(buf); err == nil {
		_, _ = c.Write(newConnResponse)
	}
}

// requestOnce dials addr, sends the request and reads the response to the
// end.
func requestOnce(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(newConnRequest); err != nil {
		return err
	}
	resp, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if !bytes.Equal(resp, newConnResponse) {
		return &unexpectedResponse{resp}
	}
	return nil
}

type unexpectedResponse struct{ got []byte }

func (e *unexpectedResponse) Error() string { return "unexpected response " + string(e.got) }
