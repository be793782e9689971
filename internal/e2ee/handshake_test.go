package e2ee

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pconnet/connet/internal/netpath"
)

// pipeStream is a netpath.Stream over net.Pipe with real deadlines.
type pipeStream struct {
	net.Conn
	reset bool
}

func (p *pipeStream) CloseWrite() error { return nil }
func (p *pipeStream) Reset()            { p.reset = true; p.Conn.Close() }

// wrapSilent runs Wrap against a peer that reads but never answers, until
// ctx ends it, and checks that the handshake failed with ctx's error when
// ctx ended (simulated time), and reset its stream. want may be several
// errors: any one will do.
func wrapSilent(t *testing.T, ctx context.Context, mode Encryption, initiator bool, bound time.Duration, want ...error) {
	t.Helper()
	c1, c2 := net.Pipe()
	var reader sync.WaitGroup
	reader.Go(func() { _, _ = io.Copy(io.Discard, c2) })
	defer reader.Wait()
	defer c2.Close()
	s := &pipeStream{Conn: c1}
	start := time.Now()
	_, err := Wrap(ctx, s, mode, initiator, newID(t), newID(t).DER())
	took := time.Since(start)
	if !slices.ContainsFunc(want, func(w error) bool { return errors.Is(err, w) }) {
		t.Errorf("%s initiator=%v: %v, want %v", mode, initiator, err, want)
	}
	if took > bound {
		t.Errorf("%s initiator=%v: returned %v (simulated) after the start, past the context's end at %v", mode, initiator, took, bound)
	}
	if !s.reset {
		t.Errorf("%s initiator=%v: the failed handshake left its stream open", mode, initiator)
	}
}

// TestSilentPeerBoundedByCtx: a handshake with a peer that never answers
// ends when its context's deadline passes, with that error.
func TestSilentPeerBoundedByCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 200 * time.Millisecond
		for _, mode := range modes {
			for _, initiator := range []bool{true, false} {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				// dhxcp gives the stream ctx's deadline, which may pass
				// just before ctx ends at the same instant: then the
				// stream's own timeout is the error.
				wrapSilent(t, ctx, mode, initiator, timeout, context.DeadlineExceeded, os.ErrDeadlineExceeded)
				cancel()
			}
		}
	})
}

// TestCancelBoundsHandshake: cancelling the context of a handshake in
// progress ends it at once, with context.Canceled.
func TestCancelBoundsHandshake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const after = 100 * time.Millisecond
		for _, mode := range modes {
			for _, initiator := range []bool{true, false} {
				ctx, cancel := context.WithCancel(context.Background())
				timer := time.AfterFunc(after, cancel)
				wrapSilent(t, ctx, mode, initiator, after, context.Canceled)
				timer.Stop()
				cancel()
			}
		}
	})
}

func TestModeMismatchFailsFast(t *testing.T) {
	for _, pair := range [][2]Encryption{{TLS, DHXCP}, {DHXCP, TLS}} {
		l := newLink(t, true, nil, nil)
		a, b := newID(t), newID(t)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		start := time.Now()
		var wg sync.WaitGroup
		var errB error
		wg.Add(1)
		go func() { defer wg.Done(); _, errB = Wrap(ctx, l.b, pair[1], false, b, a.DER()) }()
		_, errA := Wrap(ctx, l.a, pair[0], true, a, b.DER())
		wg.Wait()
		cancel()
		t.Logf("initiator %s / responder %s: %v | %v after %v", pair[0], pair[1], errA, errB, time.Since(start).Round(time.Millisecond))
		if errA == nil || errB == nil {
			t.Errorf("mismatch accepted")
		}
	}
}

// TestMalformedHandshake: junk instead of a handshake fails it, from the
// junk itself rather than the context's deadline. In a bubble, a handshake
// that hung on the junk would fail the test as a deadlock (the test
// stream has no deadlines for the context to set).
func TestMalformedHandshake(t *testing.T) {
	synctest.Test(t, testMalformedHandshake)
}

func testMalformedHandshake(t *testing.T) {
	for _, mode := range modes {
		for _, initiator := range []bool{true, false} {
			for name, junk := range map[string][]byte{
				"short":   {0, 5, 1, 2, 3, 4, 5},
				"random":  append([]byte{0, 48}, bytes.Repeat([]byte{7}, 48)...),
				"http":    []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
				"garbage": bytes.Repeat([]byte{0xff}, 300),
			} {
				l := newLink(t, true, nil, nil)
				go func() { _, _ = l.b.Write(junk); _ = l.b.CloseWrite() }()
				go io.Copy(io.Discard, l.b)
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				_, err := Wrap(ctx, l.a, mode, initiator, newID(t), newID(t).DER())
				cancel()
				if err == nil || errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s initiator=%v %s: %v, want a handshake error", mode, initiator, name, err)
				}
			}
		}
	}
}

// TestSpliceHandshakeHalves: two concurrent sessions between the same
// identities; the relay sends each initiator's first frame to its own
// responder and everything after to the other session's responder (cross=I),
// or gives each initiator the other session's responder flight (cross=R).
func TestSpliceHandshakeHalves(t *testing.T) {
	for _, mode := range modes {
		for _, cross := range []string{"I", "R"} {
			a, b := newID(t), newID(t)
			type side struct{ i, r *end }
			var ss [2]side
			var toR, toI [2]*bpipe
			var fromI, fromR [2]*bpipe
			for j := range 2 {
				fromI[j], toR[j], fromR[j], toI[j] = newBpipe(), newBpipe(), newBpipe(), newBpipe()
				ss[j] = side{i: &end{r: toI[j], w: fromI[j]}, r: &end{r: toR[j], w: fromR[j]}}
			}
			var mu sync.Mutex
			fwd := func(src *bpipe, dst func(k int) *bpipe) {
				for k := 0; ; k++ {
					f, err := readRecordFrame(src, mode)
					if err != nil {
						dst(k).closeWrite(errReset)
						return
					}
					mu.Lock()
					_, _ = dst(k).Write(f)
					mu.Unlock()
				}
			}
			var forwarders sync.WaitGroup
			for j := range 2 {
				o := 1 - j
				forwarders.Go(func() {
					fwd(fromI[j], func(k int) *bpipe {
						if cross == "I" && k >= 1 {
							return toR[o]
						}
						return toR[j]
					})
				})
				forwarders.Go(func() {
					fwd(fromR[j], func(k int) *bpipe {
						if cross == "R" {
							return toI[o]
						}
						return toI[j]
					})
				})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			var wg sync.WaitGroup
			var iErr, rErr [2]error
			var iS [2]netpath.Stream
			for j := range 2 {
				wg.Add(2)
				go func() { defer wg.Done(); iS[j], iErr[j] = Wrap(ctx, ss[j].i, mode, true, a, b.DER()) }()
				go func() { defer wg.Done(); _, rErr[j] = Wrap(ctx, ss[j].r, mode, false, b, a.DER()) }()
			}
			wg.Wait()
			cancel()
			for j := range 2 {
				if rErr[j] == nil {
					t.Errorf("%s cross=%s: responder %d accepted a spliced session", mode, cross, j)
				}
				if iErr[j] == nil {
					ss[j].r.Reset()
					if n, err := iS[j].Read(make([]byte, 10)); err == nil || err == io.EOF {
						t.Errorf("%s cross=%s: initiator %d read %d, %v", mode, cross, j, n, err)
					}
				}
			}
			t.Logf("%s cross=%s: initiators %v / %v; responders %v / %v", mode, cross, iErr[0], iErr[1], rErr[0], rErr[1])
			resetPipes(slices.Concat(fromI[:], toR[:], fromR[:], toI[:])...)
			forwarders.Wait()
		}
	}
}

// readRecordFrame reads a dhxcp frame (2-byte length) or a TLS record (5-byte header).
func readRecordFrame(r io.Reader, mode Encryption) ([]byte, error) {
	hl, lo := 2, 0
	if mode == TLS {
		hl, lo = 5, 3
	}
	hdr := make([]byte, hl)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[lo:]))
	f := make([]byte, hl+n)
	copy(f, hdr)
	_, err := io.ReadFull(r, f[hl:])
	return f, err
}

// TLS record-level replay, reorder, drop and cut-before-close after the handshake.
func TestTLSRecordManipulation(t *testing.T) {
	for _, name := range []string{"replay", "reorder", "drop", "cut-before-end", "cut-before-close_notify"} {
		aToMiddle, middleToB := newBpipe(), newBpipe()
		bToMiddle, middleToA := newBpipe(), newBpipe()
		ea, eb := &end{r: middleToA, w: aToMiddle}, &end{r: middleToB, w: bToMiddle}
		var armed sync.WaitGroup
		armed.Add(1)
		var armedFlag bool
		var mu sync.Mutex
		var middle sync.WaitGroup
		middle.Go(func() { // b->a plain
			_, _ = io.Copy(middleToA, bToMiddle)
			middleToA.closeWrite(io.EOF)
		})
		middle.Go(func() {
			defer middleToB.closeWrite(io.EOF)
			k := -1
			var held []byte
			for {
				f, err := readRecordFrame(aToMiddle, TLS)
				if err != nil {
					return
				}
				mu.Lock()
				on := armedFlag
				mu.Unlock()
				if !on {
					_, _ = middleToB.Write(f)
					continue
				}
				k++
				switch {
				case name == "replay" && k == 1:
					_, _ = middleToB.Write(f)
					_, _ = middleToB.Write(f)
				case name == "reorder" && k == 1:
					held = f
				case name == "reorder" && k == 2:
					_, _ = middleToB.Write(f)
					_, _ = middleToB.Write(held)
				case name == "drop" && k == 1:
				case name == "cut-before-end" && k == 3: // 3 data records, then end record inside TLS
					return
				case name == "cut-before-close_notify" && k == 4:
					return
				default:
					_, _ = middleToB.Write(f)
				}
			}
		})
		a, b := newID(t), newID(t)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		var sb netpath.Stream
		var errB error
		done := make(chan struct{})
		go func() { sb, errB = Wrap(ctx, eb, TLS, false, b, a.DER()); close(done) }()
		sa, errA := Wrap(ctx, ea, TLS, true, a, b.DER())
		<-done
		cancel()
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		// Both handshakes are done, so every handshake record from a has
		// crossed: a TLS 1.3 client sends nothing after its Finished (the
		// session tickets go the other way, which is never armed).
		mu.Lock()
		armedFlag = true
		mu.Unlock()
		go func() {
			for _, s := range []string{"one", "two", "three"} {
				_, _ = sa.Write([]byte(s))
			}
			_ = sa.CloseWrite()
		}()
		got, err := io.ReadAll(sb)
		t.Logf("%s: read %q, err %v", name, got, err)
		// The inner end record, authenticated by TLS, is the end of stream;
		// a lost close_notify after it loses nothing.
		if wantErr := name != "cut-before-close_notify"; (err != nil) != wantErr {
			t.Errorf("%s: err %v", name, err)
		}
		if !bytes.HasPrefix([]byte("onetwothree"), got) {
			t.Errorf("%s: altered data delivered: %q", name, got)
		}
		resetPipes(aToMiddle, middleToB, bToMiddle, middleToA)
		middle.Wait()
	}
}
