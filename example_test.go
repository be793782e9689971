package connet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/testcert"
)

// This example runs a control server, a client exposing a destination
// named "greeter", and a client reaching it through a source, all on
// loopback in one program.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A control server with a throwaway certificate. Real servers use
	// their certificate files (see the README).
	cert, err := testcert.New("127.0.0.1")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := connet.NewServer(
		connet.ServerIngress(connet.Ingress{Addr: "127.0.0.1:0", Cert: cert.TLS}),
		connet.ServerClientTokens("token-d", "token-s"),
	)
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = srv.Run(ctx) }()
	serverAddr := srv.Addrs(ctx)[0].String()

	connect := func(token string) *connet.Client {
		cl, err := connet.Connect(ctx,
			connet.ClientToken(token),
			connet.ClientControlAddress(serverAddr),
			connet.ClientControlCAs(cert.Pool),
			connet.ClientDirectAddress("127.0.0.1:0"))
		if err != nil {
			log.Fatal(err)
		}
		return cl
	}

	// The destination side: answer each connection with a greeting.
	dstClient := connect("token-d")
	defer dstClient.Close()
	dst, err := dstClient.Destination(ctx, connet.NewDestinationConfig("greeter"))
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for {
			conn, err := dst.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(conn, "hello through the tunnel")
			_ = conn.Close()
		}
	}()

	// The source side: dial the destination by name. Right after start the
	// peers may still be punching, so retry while there is no destination.
	srcClient := connect("token-s")
	defer srcClient.Close()
	src, err := srcClient.Source(ctx, connet.NewSourceConfig("greeter"))
	if err != nil {
		log.Fatal(err)
	}
	for {
		conn, err := src.Dial(ctx)
		if errors.Is(err, connet.ErrNoDestination) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
		msg, _ := io.ReadAll(conn)
		_ = conn.Close()
		fmt.Println(string(msg))
		return
	}
	// Output: hello through the tunnel
}

// A destination can forward each connection to a service instead of
// handing them out with Accept. A dial error is reported to the source.
func ExampleDestination_Serve() {
	serve := func(ctx context.Context, dst *connet.Destination) error {
		var d net.Dialer
		return dst.Serve(ctx, func(ctx context.Context, _ netip.AddrPort) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", "127.0.0.1:3000")
		})
	}
	_ = serve
}
