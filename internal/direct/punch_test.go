package direct

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
)

func TestProbeFormat(t *testing.T) {
	a, b := identity.ID{1}, identity.ID{2}
	secretB := bytes.Repeat([]byte{7}, 16)
	p := makeProbe(a, b, secretB)
	if len(p) != probeLen || !IsProbe(p) {
		t.Fatalf("probe of %d bytes not recognised", len(p))
	}
	// quic-go hands a packet to ReadNonQUICPacket only if its two top
	// bits are clear; every QUIC packet has 0x40 set.
	if p[0]&0xc0 != 0 {
		t.Fatalf("first byte %#x could be taken for QUIC", p[0])
	}
	if from, ok := probeSender(p); !ok || from != a {
		t.Fatalf("sender %v, %v", from, ok)
	}
	if !probeValid(p, a, b, secretB) {
		t.Fatal("a probe tagged with the receiver's secret is refused")
	}
	for name, ok := range map[string]bool{
		"wrong secret":    probeValid(p, a, b, bytes.Repeat([]byte{8}, 16)),
		"wrong receiver":  probeValid(p, a, identity.ID{3}, secretB),
		"wrong sender":    probeValid(p, identity.ID{3}, b, secretB),
		"no secret":       probeValid(p, a, b, nil),
		"truncated":       probeValid(p[:len(p)-1], a, b, secretB),
		"flipped tag bit": probeValid(append(p[:len(p)-1:len(p)-1], p[len(p)-1]^1), a, b, secretB),
	} {
		if ok {
			t.Errorf("%s: probe accepted", name)
		}
	}
}

// TestProbeReplies: the main socket answers a probe only from a peer with
// an easy-side attempt in progress, from that peer's public address,
// tagged with our secret, and at most maxProbeReplies times; the answer is
// a probe tagged with the peer's secret. Real sockets on loopback.
func TestProbeReplies(t *testing.T) {
	tr := newTransport(t)
	id, err := identity.Generate("test")
	if err != nil {
		t.Fatal(err)
	}
	ourSecret := bytes.Repeat([]byte{1}, 16)
	peerSecret := bytes.Repeat([]byte{2}, 16)
	others := make(chan string, 1)
	n := &Node{Transport: tr, Identity: id, PunchSecret: ourSecret,
		NonQUIC: func(b []byte, _ netip.AddrPort) {
			select {
			case others <- string(b):
			default: // a packet sent again while the first waits
			}
		}}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- n.ServeProbes(ctx) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("ServeProbes: %v", err)
		}
	}()

	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	peerID := identity.ID{9}
	to := tr.Conn.LocalAddr()
	answered := func(probe []byte) []byte {
		t.Helper()
		if _, err := other.WriteTo(probe, to); err != nil {
			t.Fatal(err)
		}
		_ = other.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 128)
		nr, _, err := other.ReadFrom(buf)
		if err != nil {
			return nil
		}
		return buf[:nr]
	}
	// Other non-QUIC packets go to the NonQUIC hook, unanswered. quic-go
	// drops them until ServeProbes first asks for one, so the packet goes
	// again until the hook has it.
	var hooked string
	for try := 0; hooked == "" && try < 50; try++ {
		if answered([]byte("\x00not a probe")) != nil {
			t.Fatal("a packet that is not a probe was answered")
		}
		select {
		case hooked = <-others:
		case <-time.After(100 * time.Millisecond):
		}
	}
	if hooked != "\x00not a probe" {
		t.Fatalf("NonQUIC got %q", hooked)
	}
	good := makeProbe(peerID, id.ID, ourSecret)
	if got := answered(good); got != nil {
		t.Fatal("a probe was answered with no attempt in progress")
	}
	n.probeMu.Lock()
	n.attempts = map[identity.ID]*easyAttempt{peerID: {observed: netip.MustParseAddr("127.0.0.1"), reply: makeProbe(id.ID, peerID, peerSecret)}}
	n.probeMu.Unlock()
	if got := answered(makeProbe(peerID, id.ID, peerSecret)); got != nil {
		t.Fatal("a probe with the wrong tag was answered")
	}
	got := answered(good)
	if got == nil || !probeValid(got, id.ID, peerID, peerSecret) {
		t.Fatalf("a valid probe got %x, want a probe tagged with the peer's secret", got)
	}
	for range maxProbeReplies - 1 {
		if answered(good) == nil {
			t.Fatal("answers stopped before the limit")
		}
	}
	if answered(good) != nil {
		t.Fatalf("more than %d answers", maxProbeReplies)
	}
	n.probeMu.Lock()
	n.attempts[peerID] = &easyAttempt{observed: netip.MustParseAddr("192.0.2.1"), reply: got}
	n.probeMu.Unlock()
	if answered(good) != nil {
		t.Fatal("a probe from an address other than the peer's was answered")
	}
}

// TestPunchSlots: no more attempts than the bound run at once, and a
// finished one frees its slot.
func TestPunchSlots(t *testing.T) {
	var s slots
	for i := range maxPunches {
		if !s.acquire(maxPunches) {
			t.Fatalf("slot %d refused", i)
		}
	}
	if s.acquire(maxPunches) {
		t.Fatal("a slot over the bound was given")
	}
	s.release()
	if !s.acquire(maxPunches) {
		t.Fatal("a released slot was not given again")
	}
}
