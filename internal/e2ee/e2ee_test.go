package e2ee

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/netpath"
)

var modes = []Encryption{TLS, DHXCP}

// secure runs both handshakes over l: a (initiator) pins bPin, b pins aPin.
func secure(t testing.TB, l *link, mode Encryption, a, b *identity.Identity, aPins, bPins []byte) (netpath.Stream, netpath.Stream, error, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type res struct {
		s   netpath.Stream
		err error
	}
	bc := make(chan res, 1)
	go func() {
		s, err := Wrap(ctx, l.b, mode, false, b, bPins)
		bc <- res{s, err}
	}()
	sa, errA := Wrap(ctx, l.a, mode, true, a, aPins)
	rb := <-bc
	return sa, rb.s, errA, rb.err
}

func pair(t *testing.T, mode Encryption, aToB, bToA mangler) (netpath.Stream, netpath.Stream, *link) {
	t.Helper()
	l := newLink(t, mode == TLS, aToB, bToA)
	a, b := newID(t), newID(t)
	sa, sb, errA, errB := secure(t, l, mode, a, b, b.DER(), a.DER())
	if errA != nil || errB != nil {
		t.Fatalf("handshake: initiator %v, responder %v", errA, errB)
	}
	return sa, sb, l
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestChoose(t *testing.T) {
	for _, tc := range []struct {
		local, remote []Encryption
		want          Encryption
		err           bool
	}{
		{[]Encryption{None, DHXCP, TLS}, []Encryption{TLS}, TLS, false},
		{[]Encryption{None, DHXCP, TLS}, []Encryption{None}, None, false},
		{[]Encryption{TLS}, []Encryption{DHXCP}, "", true},
		{[]Encryption{DHXCP, None}, []Encryption{DHXCP, TLS}, DHXCP, false},
		{[]Encryption{None, TLS}, []Encryption{TLS, None}, TLS, false},
	} {
		got, err := Choose(tc.local, tc.remote)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("Choose(%v, %v) = %q, %v", tc.local, tc.remote, got, err)
		}
		if tc.err && !errors.Is(err, ErrMismatch) {
			t.Errorf("mismatch error %v is not ErrMismatch", err)
		}
	}
	if _, err := ParseEncryption("rot13"); err == nil {
		t.Error("unknown encryption parsed")
	}
}

// TestRoundTrip moves large random data both ways at once and ends each
// direction on its own.
func TestRoundTrip(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			sa, sb, l := pair(t, mode, nil, nil)
			ab, ba := random(t, 3<<20), random(t, 2<<20)
			errs := make(chan error, 2)
			send := func(s netpath.Stream, data []byte) {
				if _, err := s.Write(data); err != nil {
					errs <- err
					return
				}
				errs <- s.CloseWrite()
			}
			go send(sa, ab)
			go send(sb, ba)
			gotB, errB := io.ReadAll(sb)
			gotA, errA := io.ReadAll(sa)
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if errA != nil || errB != nil || !bytes.Equal(gotB, ab) || !bytes.Equal(gotA, ba) {
				t.Fatalf("round trip: a read %d bytes (%v), b read %d bytes (%v)", len(gotA), errA, len(gotB), errB)
			}
			// What the relay saw holds none of the plaintext.
			marker := ab[1000:1032]
			if bytes.Contains(l.aToB.bytes(), marker) {
				t.Fatal("plaintext crossed the relay")
			}
		})
	}
}

func TestHalfClose(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			sa, sb, _ := pair(t, mode, nil, nil)
			if _, err := sa.Write([]byte("question")); err != nil {
				t.Fatal(err)
			}
			if err := sa.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(sb)
			if err != nil || string(got) != "question" {
				t.Fatalf("b read %q, %v", got, err)
			}
			// The other direction still works after a's half-close.
			go func() {
				_, _ = sb.Write([]byte("answer"))
				_ = sb.CloseWrite()
			}()
			got, err = io.ReadAll(sa)
			if err != nil || string(got) != "answer" {
				t.Fatalf("a read %q, %v", got, err)
			}
		})
	}
}

func TestWrongPeerIsRefused(t *testing.T) {
	for _, mode := range modes {
		for _, wrongSide := range []string{"initiator", "responder"} {
			t.Run(string(mode)+"/"+wrongSide, func(t *testing.T) {
				l := newLink(t, mode == TLS, nil, nil)
				a, b, stranger := newID(t), newID(t), newID(t)
				aPins, bPins := b.DER(), a.DER()
				if wrongSide == "initiator" {
					aPins = stranger.DER()
				} else {
					bPins = stranger.DER()
				}
				sa, _, errA, errB := secure(t, l, mode, a, b, aPins, bPins)
				if errB == nil {
					t.Fatalf("responder accepted with a wrong pin on the %s", wrongSide)
				}
				if errA == nil {
					// The initiator finishes its part before the responder
					// checks it (in both modes); it learns of the refusal
					// from the reset that follows, before any data.
					if n, err := sa.Read(make([]byte, 1)); err == nil {
						t.Fatalf("initiator read %d bytes from a responder that refused it", n)
					}
				}
			})
		}
	}
}

// dataFrame is the index, in the initiator-to-responder direction, of the
// first data record in dhxcp: 0 is the Noise message, 1 the initiator's
// signature.
const dataFrame = 2

func TestDHXCPRejectsManipulation(t *testing.T) {
	flip := func(f []byte) []byte { g := bytes.Clone(f); g[len(g)-1] ^= 1; return g }
	var held []byte
	for name, m := range map[string]mangler{
		"tamper": func(i int, f []byte) [][]byte {
			if i == dataFrame {
				return [][]byte{flip(f)}
			}
			return [][]byte{f}
		},
		"replay": func(i int, f []byte) [][]byte {
			if i == dataFrame {
				return [][]byte{f, f}
			}
			return [][]byte{f}
		},
		"reorder": func(i int, f []byte) [][]byte {
			switch i {
			case dataFrame:
				held = f
				return nil
			case dataFrame + 1:
				return [][]byte{f, held}
			}
			return [][]byte{f}
		},
		"drop": func(i int, f []byte) [][]byte {
			if i == dataFrame {
				return [][]byte{}
			}
			return [][]byte{f}
		},
		"truncate": func(i int, f []byte) [][]byte {
			if i == dataFrame+1 { // the end record never arrives
				return [][]byte{nil}
			}
			return [][]byte{f}
		},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "reorder" {
				// The held frame must not be sent before its successor.
				m = func(next mangler) mangler {
					return func(i int, f []byte) [][]byte {
						out := next(i, f)
						if out == nil {
							return [][]byte{}
						}
						return out
					}
				}(m)
			}
			sa, sb, _ := pair(t, DHXCP, m, nil)
			go func() {
				_, _ = sa.Write([]byte("first record"))
				_, _ = sa.Write([]byte("second record"))
				_ = sa.CloseWrite()
			}()
			got, err := io.ReadAll(sb)
			if err == nil {
				t.Fatalf("%s went unnoticed: read %q and a clean end", name, got)
			}
			if name == "truncate" && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("truncation: %v, want ErrUnexpectedEOF", err)
			}
			if bytes.Contains(got, []byte("second")) && name != "truncate" && name != "tamper" {
				t.Fatalf("%s: delivered data after the manipulation: %q", name, got)
			}
		})
	}
}

// TestTLSRejectsManipulation alters or cuts the TLS byte stream after the
// handshake.
func TestTLSRejectsManipulation(t *testing.T) {
	for _, name := range []string{"tamper", "truncate"} {
		t.Run(name, func(t *testing.T) {
			sa, sb, l := pair(t, TLS, nil, nil)
			if name == "tamper" {
				l.aToB.arm(100, -1)
			} else {
				l.aToB.arm(-1, 3000)
			}
			go func() {
				_, _ = sa.Write(bytes.Repeat([]byte("secret "), 1000))
				_ = sa.CloseWrite()
			}()
			got, err := io.ReadAll(sb)
			if err == nil {
				t.Fatalf("%s went unnoticed: read %d bytes and a clean end", name, len(got))
			}
			if name == "truncate" && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("truncation: %v, want ErrUnexpectedEOF", err)
			}
		})
	}
}

// TestSplicedSessionsFail injects a record of one session into another
// between the same two identities: it cannot be opened.
func TestSplicedSessionsFail(t *testing.T) {
	a, b := newID(t), newID(t)
	var captured []byte
	l1 := newLink(t, false, func(i int, f []byte) [][]byte {
		if i == dataFrame {
			captured = bytes.Clone(f)
		}
		return [][]byte{f}
	}, nil)
	s1a, s1b, errA, errB := secure(t, l1, DHXCP, a, b, b.DER(), a.DER())
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	go func() { _, _ = s1a.Write([]byte("session one")) }()
	buf := make([]byte, 11)
	if _, err := io.ReadFull(s1b, buf); err != nil {
		t.Fatal(err)
	}
	l2 := newLink(t, false, func(i int, f []byte) [][]byte {
		if i == dataFrame {
			return [][]byte{captured}
		}
		return [][]byte{f}
	}, nil)
	s2a, s2b, errA, errB := secure(t, l2, DHXCP, a, b, b.DER(), a.DER())
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	go func() { _, _ = s2a.Write([]byte("session two")) }()
	if _, err := io.ReadFull(s2b, buf); err == nil {
		t.Fatalf("a record of another session was accepted: %q", buf)
	}
}
