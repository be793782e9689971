package ingress_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"testing/synctest"

	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/simnet"
	"github.com/p2pconnet/connet/internal/testcert"
	"github.com/p2pconnet/connet/internal/tuning"
)

// TestGroupOnNetwork: a group listens on QUIC and TCP through the network
// it is given (a simulated one: no root, no real port), reports both
// addresses, hands a TCP client to the handler, and ends with its context.
func TestGroupOnNetwork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Made in the bubble, whose clock starts in 2000.
		cert, err := testcert.New("203.0.113.1")
		if err != nil {
			t.Fatal(err)
		}
		n := simnet.New()
		defer n.Close()
		server, client := n.Host("203.0.113.1"), n.Host("203.0.113.2")
		cfg := groupConfig(cert, server)
		handled := make(chan net.Addr, 1)
		var quicAddr, tcpAddr net.Addr
		g := ingress.Group{Name: "test", Logger: discard(), Listeners: []ingress.Listener{{
			Ingress: ingress.Ingress{Addr: "203.0.113.1:443", TCP: true},
			Config:  cfg,
			Handle: func(ctx context.Context, conn muxconn.Conn) {
				handled <- conn.RemoteAddr()
				<-ctx.Done()
			},
			Bound: func(a net.Addr, tcp bool) {
				if tcp {
					tcpAddr = a
				} else {
					quicAddr = a
				}
			},
		}}}
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx, func() { close(ready) }) }()
		<-ready
		if quicAddr == nil || tcpAddr == nil || quicAddr.String() != "203.0.113.1:443" || tcpAddr.String() != "203.0.113.1:443" {
			t.Fatalf("bound QUIC %v and TCP %v, want both at 203.0.113.1:443", quicAddr, tcpAddr)
		}
		d := muxconn.TCPDialer{Addr: "203.0.113.1:443", Network: client}
		conn, err := d.Dial(ctx, &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: cert.Pool, ServerName: "203.0.113.1", NextProtos: []string{"test"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := (<-handled).String(); got != conn.LocalAddr().String() {
			t.Fatalf("handler got a client at %s, the client is at %s", got, conn.LocalAddr())
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
		_ = conn.CloseWithError(0, "")
	})
}

// TestGroupBindFailure: a listener that cannot bind ends the group with
// its error, and ready is not called.
func TestGroupBindFailure(t *testing.T) {
	cert, err := testcert.New("203.0.113.1")
	if err != nil {
		t.Fatal(err)
	}
	n := simnet.New()
	defer n.Close()
	server := n.Host("203.0.113.1")
	taken, err := server.Listen(context.Background(), "tcp", ":443")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	g := ingress.Group{Name: "test", Logger: discard(), Listeners: []ingress.Listener{{
		Ingress: ingress.Ingress{Addr: "203.0.113.1:443", NoQUIC: true, TCP: true},
		Config:  groupConfig(cert, server),
		Handle:  func(context.Context, muxconn.Conn) {},
	}}}
	err = g.Run(context.Background(), func() { t.Error("ready called after a failed bind") })
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Run: %v, want address in use", err)
	}
}

func groupConfig(cert *testcert.Cert, n *simnet.Host) ingress.Config {
	return ingress.Config{
		TLS:     &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert.TLS}, NextProtos: []string{"test"}},
		QUIC:    tuning.QUIC(0),
		Logger:  discard(),
		Network: n,
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
