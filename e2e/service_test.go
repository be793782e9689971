package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/natlab"
)

// serviceEnv makes the test binary a service process instead of a test
// run (see TestMain): "echo ADDR" or "hello ADDR". A measured service runs
// in a process of its own, as every real service does: in the test process
// it would share the Go scheduler with the clients the test runs, and the
// direct reference would skip the wake-up of another process that every
// real request pays. TestScale's service also holds the far end of every
// measured connection, which would not fit in the test process's open-file
// limit beside the near ends.
const serviceEnv = "CONNET_E2E_SERVICE"

// Kinds of service process.
const (
	// echoService echoes every connection through a small buffer (the
	// service may hold 10 000 of them).
	echoService = "echo"
	// helloService answers every HTTP request with a short body.
	helloService = "hello"
)

// helloBody is what helloService answers.
const helloBody = "hello from the service\n"

// startService runs the test binary as a service of kind at addr in h's
// namespace and waits until it accepts connections.
func startService(t *testing.T, h *natlab.Host, kind, addr string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(self)
	cmd.Env = append(os.Environ(), serviceEnv+"="+kind+" "+addr)
	h.StartCmd(t, kind+"-service", cmd)
	const attempts, pause = 200, 25 * time.Millisecond
	for range attempts {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := h.DialTCP(ctx, addr)
		cancel()
		if err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(pause)
	}
	t.Fatalf("%s service at %s did not start accepting within %v", kind, addr, attempts*pause)
}

// runService is the service process's life: it serves spec ("KIND ADDR")
// until it is stopped, and returns only on failure.
func runService(spec string) error {
	kind, addr, _ := strings.Cut(spec, " ")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	switch kind {
	case echoService:
		return serveEcho(ln)
	case helloService:
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(helloBody))
			}),
			ReadHeaderTimeout: 5 * time.Second,
		}
		return srv.Serve(ln)
	}
	_ = ln.Close()
	return fmt.Errorf("unknown service kind %q", kind)
}

// serveEcho echoes every connection ln accepts, each through a small
// buffer, until ln fails.
func serveEcho(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 64)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}
