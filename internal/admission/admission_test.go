package admission_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet/internal/admission"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

const alpn = "connet-test"

// connect returns both ends of a TLS-over-TCP connection on loopback,
// closed when the test ends, and the client's identity.
func connect(t *testing.T) (client, server muxconn.Conn, clientID identity.ID) {
	t.Helper()
	srvID, err := identity.Generate("server")
	if err != nil {
		t.Fatal(err)
	}
	cliID, err := identity.Generate("client")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := muxconn.Listen(muxconn.ListenConfig{
		Addr: "127.0.0.1:0",
		TLS: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{srvID.Cert},
			NextProtos: []string{alpn}, ClientAuth: tls.RequireAnyClientCert},
		HandshakeTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err = muxconn.TCPDialer{Addr: ln.Addr().String()}.Dial(ctx, cliID.PinnedClientConfig(srvID.DER(), alpn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.CloseWithError(0, "") })
	server, err = ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.CloseWithError(0, "") })
	return client, server, cliID.ID
}

// ask opens the client's stream and sends hello on it.
func ask(t *testing.T, client muxconn.Conn, hello *pb.Hello) muxconn.Stream {
	t.Helper()
	s, err := client.OpenStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The write of a request over the cap may fail once the server stops
	// reading: the reply is what counts.
	_ = wire.Write(s, hello)
	return s
}

// TestAdmit: the server reads the request, knows who asks, and its answer
// reaches the peer on the stream both keep.
func TestAdmit(t *testing.T) {
	client, server, clientID := connect(t)
	cs := ask(t, client, &pb.Hello{Token: "secret"})
	var hello pb.Hello
	req, err := admission.Receive(t.Context(), server, 10*time.Second, "hello", &hello, wire.MaxHello)
	if err != nil {
		t.Fatal(err)
	}
	if hello.GetToken() != "secret" || req.Peer != clientID {
		t.Fatalf("read token %q from %v, want %q from %v", hello.GetToken(), req.Peer, "secret", clientID)
	}
	ss, err := req.Admit(&pb.HelloReply{ClientId: req.Peer[:]})
	if err != nil {
		t.Fatal(err)
	}
	var reply pb.HelloReply
	if err := wire.Read(cs, &reply, wire.MaxControlMessage); err != nil || reply.GetError() != nil {
		t.Fatalf("reply %v, %v", &reply, err)
	}
	// The stream goes on after the answer.
	if err := wire.Write(ss, &pb.HelloReply{}); err != nil {
		t.Fatal(err)
	}
	if err := wire.Read(cs, &reply, wire.MaxControlMessage); err != nil {
		t.Fatal(err)
	}
}

// TestRefuseOverCap: a request over the cap is an error returned with the
// request, and the peer reads the refusal; Refuse returns once the peer
// closes the connection.
func TestRefuseOverCap(t *testing.T) {
	client, server, _ := connect(t)
	cs := ask(t, client, &pb.Hello{Metadata: strings.Repeat("x", 4*wire.MaxHello)})
	var hello pb.Hello
	req, err := admission.Receive(t.Context(), server, 10*time.Second, "hello", &hello, wire.MaxHello)
	if !errors.Is(err, wire.ErrTooLarge) || req == nil {
		t.Fatalf("Receive = %v, %v; want the request and wire.ErrTooLarge", req, err)
	}
	refused := make(chan struct{})
	go func() {
		defer close(refused)
		req.Refuse(&pb.HelloReply{Error: wire.ToPB(wire.Errorf(pb.ErrorCode_ERROR_CODE_LIMIT, "too large"))})
	}()
	var reply pb.HelloReply
	if err := wire.Read(cs, &reply, wire.MaxControlMessage); err != nil {
		t.Fatal(err)
	}
	if reply.GetError().GetCode() != pb.ErrorCode_ERROR_CODE_LIMIT {
		t.Fatalf("reply %v, want a limit refusal", &reply)
	}
	_ = client.CloseWithError(0, "read the refusal")
	<-refused
}

// TestNoRequest: a peer that opens no stream is not waited for beyond the
// timeout, and the error names what was awaited.
func TestNoRequest(t *testing.T) {
	_, server, _ := connect(t)
	var hello pb.Hello
	_, err := admission.Receive(t.Context(), server, 50*time.Millisecond, "hello", &hello, wire.MaxHello)
	if err == nil || !strings.Contains(err.Error(), "waiting for hello") {
		t.Fatalf("Receive = %v, want an error waiting for hello", err)
	}
}
