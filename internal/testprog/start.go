package testprog

import (
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// StartListening runs cmd, a program that serves TCP at addr, until the
// test ends (then stopped by its PID: SIGTERM, and SIGKILL after 10 s),
// and returns its output once addr accepts connections.
func StartListening(t testing.TB, cmd *exec.Cmd, addr string) *LockedBuffer {
	t.Helper()
	out := &LockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		// SIGTERM first: nginx's master takes its workers down with it,
		// which a SIGKILL would leave behind.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
			return out
		}
		select {
		case <-exited:
			t.Fatalf("%s exited: %s", cmd.Path, out)
		default:
		}
		if i == 300 {
			t.Fatalf("%s does not listen on %s after 300 tries: %s", cmd.Path, addr, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
