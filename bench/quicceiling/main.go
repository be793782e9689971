// Command quicceiling measures the most one QUIC connection carries on this
// machine: bulk data on one stream (or -streams N in parallel) between two
// processes, with the QUIC settings (tuning.QUIC), TLS (a fresh Ed25519
// identity, TLS 1.3, pinned, the peer ALPN) and UDP sockets a connet client
// uses, and no TCP legs. A tunnel figure divided by this one says how much of
// what QUIC could carry the tunnel delivers.
//
//	quicceiling                                # both ends on loopback, in two processes
//	quicceiling -listen 10.0.0.1:0             # receiver: prints "ADDR CERT", serves one connection
//	quicceiling -dial 10.0.0.1:4242 -cert HEX  # sender: prints the figure
//
// The sender's last line is "quicceiling streams=N MBps=X".
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

func main() {
	listen := flag.String("listen", "", "receive: listen on this UDP address, print \"ADDR CERT\" and serve one connection")
	dial := flag.String("dial", "", "send: dial the receiver at this address")
	cert := flag.String("cert", "", "the receiver's certificate (hex DER), as it printed it")
	streams := flag.Int("streams", 1, "parallel streams to send on")
	duration := flag.Duration("duration", 3*time.Second, "how long to send")
	flag.Parse()
	if err := run(*listen, *dial, *cert, *streams, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "quicceiling:", err)
		os.Exit(1)
	}
}

// runLimit bounds a whole run, so a stuck peer cannot hang a benchmark.
const runLimit = 2 * time.Minute

func run(listen, dial, cert string, streams int, duration time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	defer cancel()
	switch {
	case listen != "" && dial != "":
		return errors.New("-listen and -dial exclude each other")
	case listen != "":
		return receive(ctx, listen, os.Stdout)
	case dial != "":
		der, err := hex.DecodeString(cert)
		if err != nil || len(der) == 0 {
			return fmt.Errorf("-cert: want the receiver's certificate in hex: %v", err)
		}
		return report(ctx, dial, der, streams, duration)
	default:
		return loopback(ctx, streams, duration)
	}
}

// report sends and prints the figure.
func report(ctx context.Context, addr string, der []byte, streams int, duration time.Duration) error {
	if streams < 1 {
		return fmt.Errorf("-streams %d: want at least 1", streams)
	}
	mbps, err := send(ctx, addr, der, streams, duration)
	if err != nil {
		return err
	}
	fmt.Printf("quicceiling streams=%d MBps=%.0f\n", streams, mbps)
	return nil
}

// loopback runs the receiver as a second process of this program on
// 127.0.0.1, so sender and receiver each have their own runtime as two
// connet clients do.
func loopback(ctx context.Context, streams int, duration time.Duration) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	child := exec.CommandContext(ctx, self, "-listen", "127.0.0.1:0")
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return fmt.Errorf("start receiver: %w", err)
	}
	// The receiver exits when the sender closes the connection; if it has
	// not shortly after, or the sender failed, it is killed so that it
	// never outlives this process.
	exited := make(chan error, 1)
	defer func() {
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = child.Process.Kill()
			<-exited
		}
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	// Wait reads the pipe's end too, so it starts after the announcement.
	go func() { exited <- child.Wait() }()
	if err != nil {
		return fmt.Errorf("receiver did not announce its address: %w", err)
	}
	addr, certHex, ok := strings.Cut(strings.TrimSpace(line), " ")
	der, herr := hex.DecodeString(certHex)
	if !ok || herr != nil {
		return fmt.Errorf("receiver announced %q, want \"ADDR CERT\"", line)
	}
	return report(ctx, addr, der, streams, duration)
}
