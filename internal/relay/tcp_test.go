package relay

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// TestRelayBetweenTCPAndQUIC: a relay listening on QUIC and TCP at the
// same port relays between a client that reached it over TLS on TCP (its
// UDP blocked) and one over QUIC, on their grants alone.
func TestRelayBetweenTCPAndQUIC(t *testing.T) {
	r := startRelayAt(t, Ingress{Ingress: ingress.Ingress{Addr: "127.0.0.1:0", TCP: true}})
	rid := r.id
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	udp, tcp := r.srv.Addrs(ctx)[0].String(), r.srv.TCPAddrs(ctx)[0].String()
	if _, up, _ := splitPort(udp); !hasPort(tcp, up) {
		t.Fatalf("TCP at %s, want the UDP port of %s", tcp, udp)
	}

	// The source is over TCP.
	srcID := newIdentity(t)
	src, err := muxconn.DialTCP(ctx, tcp, srcID.PinnedClientConfig(rid.DER(), wire.ALPNRelay))
	if err != nil {
		t.Fatal(err)
	}
	defer src.CloseWithError(0, "")
	auth, err := src.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.Write(auth, r.grantFor(srcID, time.Now(), ep("web", pb.Role_ROLE_SOURCE, pb.Route_ROUTE_ANY))); err != nil {
		t.Fatal(err)
	}
	var reply pb.RelayReply
	if err := wire.Read(auth, &reply, wire.MaxStreamHeader); err != nil || reply.GetError() != nil {
		t.Fatalf("grant over TCP: %v %v", err, reply.GetError())
	}

	// The destination is over QUIC.
	dst := r.dial(newIdentity(t))
	if err := dst.present(t, r.grantFor(dst.id, time.Now(), ep("web", pb.Role_ROLE_DESTINATION, pb.Route_ROUTE_ANY))); err != nil {
		t.Fatal(err)
	}

	out, err := src.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.Write(out, &pb.RelayConnect{Peer: dst.id.ID[:]}); err != nil {
		t.Fatal(err)
	}
	if err := wire.Read(out, &reply, wire.MaxStreamHeader); err != nil || reply.GetError() != nil {
		t.Fatalf("connect over TCP: %v %v", err, reply.GetError())
	}
	in, err := dst.conn.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var hello pb.RelayIncoming
	if err := wire.Read(in, &hello, wire.MaxStreamHeader); err != nil {
		t.Fatal(err)
	}
	if from, _ := identity.ParseID(hello.GetPeer()); from != srcID.ID {
		t.Fatalf("destination told the stream is from %s, want %s", from, srcID.ID)
	}
	if _, err := out.Write([]byte("from tcp")); err != nil {
		t.Fatal(err)
	}
	_ = out.CloseWrite()
	got, err := io.ReadAll(in)
	if err != nil || string(got) != "from tcp" {
		t.Fatalf("destination read %q, %v", got, err)
	}
	if _, err := in.Write([]byte("from quic")); err != nil {
		t.Fatal(err)
	}
	_ = in.Close()
	got, err = io.ReadAll(out)
	if err != nil || string(got) != "from quic" {
		t.Fatalf("source read %q, %v", got, err)
	}
}

func splitPort(hostport string) (string, string, error) {
	host, port, err := net.SplitHostPort(hostport)
	return host, port, err
}

func hasPort(hostport, port string) bool {
	_, p, err := net.SplitHostPort(hostport)
	return err == nil && p == port
}
