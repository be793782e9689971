package status

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestIdleConnectionsClosed: a client that asks for the status page or the
// metrics and then keeps its connection open without asking more is
// closed after idleTimeout; one that sends nothing, after readTimeout.
// Each answer is complete first.
func TestIdleConnectionsClosed(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "connet_up 1\n") })
	go func() {
		done <- Serve(ctx, ln, func() any { return map[string]string{"kind": "test"} }, metrics, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	for _, tc := range []struct{ name, path, want string }{
		{"status page", "/", `"kind": "test"`},
		{"metrics", "/metrics", "connet_up 1"},
		{"nothing sent", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r := bufio.NewReader(c)
			if tc.path != "" {
				if _, err := io.WriteString(c, "GET "+tc.path+" HTTP/1.1\r\nHost: status\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tc.want) {
					t.Fatalf("answer %d %q (%v), want 200 with %q", resp.StatusCode, body, err, tc.want)
				}
			}
			limit := idleTimeout + 10*time.Second
			_ = c.SetReadDeadline(time.Now().Add(limit))
			if _, err := r.ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("the connection is still open %v later", limit)
			}
		})
	}
}
