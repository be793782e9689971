package quicdial

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"github.com/quic-go/quic-go"
	"go.uber.org/goleak"
)

// The dials Any starts must all be gone after the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestNoUsableCandidate: from an IPv4 socket, IPv6 and link-local
// candidates are not dialed, and Any says there is nothing to dial.
func TestNoUsableCandidate(t *testing.T) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	defer func() { _ = tr.Close(); _ = udp.Close() }()
	candidates := []netip.AddrPort{
		netip.MustParseAddrPort("[2001:db8::1]:1000"),
		netip.MustParseAddrPort("169.254.1.1:1000"),
	}
	_, err = Any(context.Background(), tr, candidates, &tls.Config{}, nil, slog.New(slog.DiscardHandler))
	if !errors.Is(err, ErrNoCandidates) {
		t.Fatalf("got %v, want ErrNoCandidates", err)
	}
}

func TestUsableAndFamilies(t *testing.T) {
	v4, v6 := Families(&net.UDPAddr{IP: net.IPv6unspecified, Port: 1})
	if !v4 || !v6 {
		t.Fatalf("unspecified IPv6 socket: v4=%v v6=%v, want dual-stack", v4, v6)
	}
	v4, v6 = Families(&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1})
	if !v4 || v6 {
		t.Fatalf("IPv4 socket: v4=%v v6=%v", v4, v6)
	}
	for addr, want := range map[string]bool{
		"192.0.2.1":        true,
		"::ffff:192.0.2.1": true,
		"2001:db8::1":      false, // IPv6 from an IPv4-only socket
		"fe80::1":          false, // link-local needs a zone
		"169.254.0.1":      false,
		"0.0.0.0":          false,
		"224.0.0.1":        false,
	} {
		if got := Usable(netip.MustParseAddr(addr), true, false); got != want {
			t.Errorf("Usable(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestUsableDualStack: from a dual-stack socket, global IPv6 addresses
// (the documentation range included, as in the NAT lab) and unique local
// ones (same site, like RFC 1918 for IPv4) are candidates; link-local ones
// are not.
func TestUsableDualStack(t *testing.T) {
	v4, v6 := Families(&net.UDPAddr{IP: net.IPv6unspecified, Port: 19192})
	for addr, want := range map[string]bool{
		"2001:db8:a::2": true,
		"2a01:4f8::1":   true,
		"fd12:3456::1":  true,
		"192.0.2.2":     true,
		"fe80::1":       false,
		"::":            false,
		"ff02::1":       false,
	} {
		if got := Usable(netip.MustParseAddr(addr), v4, v6); got != want {
			t.Errorf("Usable(%s) from [::] = %v, want %v", addr, got, want)
		}
	}
}
