package ingress_test

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/tuning"
)

func pairConfig(t *testing.T, addr string) ingress.PairConfig {
	t.Helper()
	cert, err := testcert.New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return ingress.PairConfig{
		Config: ingress.Config{
			Addr: addr,
			TLS:  &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert.TLS}, NextProtos: []string{"test"}},
			QUIC: tuning.QUIC(0),
		},
		QUIC: true, TCP: true,
	}
}

func closePair(p ingress.Pair) {
	if p.Transport != nil {
		_ = ingress.Close(p.Transport)
	}
	if p.TCP != nil {
		_ = p.TCP.Close()
	}
}

// TestPairSharesAPickedPort: with port 0, TCP listens at the port UDP
// picked.
func TestPairSharesAPickedPort(t *testing.T) {
	for range 20 {
		p, err := ingress.ListenPair(pairConfig(t, "127.0.0.1:0"))
		if err != nil {
			t.Fatal(err)
		}
		udp := p.Transport.Conn.LocalAddr().(*net.UDPAddr).Port
		tcp := p.TCP.Addr().(*net.TCPAddr).Port
		closePair(p)
		if udp != tcp {
			t.Fatalf("UDP at %d, TCP at %d; want one port", udp, tcp)
		}
	}
}

// TestPairChosenPortTakenOnTCP: a port the user chose is not swapped for
// another when TCP has it taken; the error says so.
func TestPairChosenPortTakenOnTCP(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	p, err := ingress.ListenPair(pairConfig(t, taken.Addr().String()))
	if err == nil {
		closePair(p)
		t.Fatal("listened beside a taken TCP port")
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("error %v, want address in use", err)
	}
	// The UDP socket was given back: the port is free for UDP again.
	u, err := net.ListenPacket("udp", taken.Addr().String())
	if err != nil {
		t.Fatalf("UDP port kept after the failure: %v", err)
	}
	_ = u.Close()
}
