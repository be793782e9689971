package natlab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a process running in a lab namespace.
type Proc struct {
	Name string
	Host *Host
	// LogPath is the file that receives the process's stdout and stderr.
	LogPath string

	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid once done is closed
	stop    sync.Once
	stopErr error
}

// How long Stop waits after SIGTERM before SIGKILL, and after SIGKILL.
const (
	stopGrace = 5 * time.Second
	killWait  = 10 * time.Second
)

// maxLogDump bounds how much of a process's output is logged on failure.
const maxLogDump = 64 << 10

// Start runs argv in the namespace (see Command and StartCmd).
func (h *Host) Start(t testing.TB, name string, argv ...string) *Proc {
	t.Helper()
	return h.StartCmd(t, name, h.Command(argv...))
}

// StartCmd starts cmd, which must come from h.Command. Its stdout and stderr
// go to a file under t.TempDir(); the output is logged if the test fails.
// The process is stopped at cleanup (SIGTERM, then SIGKILL) by PID, and
// gets SIGKILL if the test process dies first.
func (h *Host) StartCmd(t testing.TB, name string, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{
		Name:    name,
		Host:    h,
		LogPath: filepath.Join(t.TempDir(), name+".log"),
		cmd:     cmd,
		done:    make(chan struct{}),
	}
	f, err := os.Create(p.LogPath)
	if err != nil {
		t.Fatalf("natlab: start %s: %v", name, err)
	}
	defer f.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = f, f
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Do not leak processes when the test binary is killed (e.g. by the
	// go test timeout). ip netns exec execs the program, which keeps it.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		t.Fatalf("natlab: start %s in %s: %v", name, h.Name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.Stop(); err != nil && !p.killedByUs(err) {
			t.Logf("natlab: %s exited: %v", name, err)
		}
		if t.Failed() {
			t.Logf("natlab: output of %s in %s (%s):\n%s", name, h.Name, p.LogPath, p.tail(maxLogDump))
		}
	})
	return p
}

// PID is the process id of the program (not of ip, which execs it).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Wait waits for the process to exit, or ctx, and returns its exit error.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.waitErr
	case <-ctx.Done():
		return fmt.Errorf("natlab: wait for %s: %w", p.Name, ctx.Err())
	}
}

// Stop sends SIGTERM, waits up to 5s, then sends SIGKILL, and returns the
// exit error (e.g. "signal: terminated" for a program without a handler).
// It is idempotent; later calls return the first result.
func (p *Proc) Stop() error {
	p.stop.Do(func() { p.stopErr = p.terminate(syscall.SIGTERM, stopGrace) })
	return p.stopErr
}

// Kill sends SIGKILL right away (a crash, for restart tests) and waits for
// the process to exit. Like Stop, it is idempotent.
func (p *Proc) Kill() error {
	p.stop.Do(func() { p.stopErr = p.terminate(syscall.SIGKILL, 0) })
	return p.stopErr
}

func (p *Proc) terminate(sig syscall.Signal, grace time.Duration) error {
	select {
	case <-p.done:
		return p.waitErr
	default:
	}
	// os.Process signals through a pidfd, so a recycled PID is never hit.
	if err := p.cmd.Process.Signal(sig); err == nil && grace > 0 {
		select {
		case <-p.done:
			return p.waitErr
		case <-time.After(grace):
		}
	}
	if sig != syscall.SIGKILL {
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(killWait):
		return fmt.Errorf("natlab: %s (pid %d) did not exit after SIGKILL", p.Name, p.PID())
	}
}

// killedByUs tells whether err is the exit by a signal that Stop or Kill sent.
func (p *Proc) killedByUs(err error) bool {
	ee, ok := err.(*exec.ExitError)
	if !ok {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && (ws.Signal() == syscall.SIGTERM || ws.Signal() == syscall.SIGKILL)
}

// Output returns everything the process has written so far.
func (p *Proc) Output() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("<natlab: read %s: %v>", p.LogPath, err)
	}
	return string(b)
}

func (p *Proc) tail(n int) string {
	out := p.Output()
	if len(out) > n {
		return fmt.Sprintf("<%d bytes cut>\n%s", len(out)-n, out[len(out)-n:])
	}
	return out
}
