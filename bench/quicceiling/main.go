// Command quicceiling measures the most one QUIC connection does on this
// machine between two processes, with the QUIC settings (tuning.QUIC), TLS
// (a fresh Ed25519 identity, TLS 1.3, pinned, the peer ALPN) and UDP sockets
// a connet client uses, and no TCP legs. A tunnel figure divided by this one
// says how much of what QUIC could do the tunnel delivers. Three workloads:
//
//   - bulk: data on one stream (or -streams N in parallel), in MB/s;
//   - requests: -streams N streams each carrying one small request and its
//     response after another, as wrk does on its connections, in requests
//     a second with the p50 and p99 of their times;
//   - connect: one new stream after another, each carrying one request and
//     its response to the stream's end, as a client that opens a
//     connection per request does: the p50 and p99 of their times.
//
// With -over tcp the same workload runs over TCP connections between the
// same two processes instead (a new connection where QUIC opens a stream),
// the reference that says what QUIC itself costs.
//
//	quicceiling [-mode M] [-over tcp]          # both ends on loopback, in two processes
//	quicceiling -listen 10.0.0.1:0             # receiver: prints "ADDR CERT TCPADDR", serves one connection
//	quicceiling -dial ADDR -cert HEX [-tcp-addr TCPADDR -over tcp] [-mode M]  # sender: prints the figure
//
// The sender's last line is "quicceiling mode=M over=O streams=N MBps=X" for
// bulk, "... rps=X p50_ms=Y p99_ms=Z" for requests and "... count=N
// p50_ms=Y p99_ms=Z" for connect.
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
	var w workload
	listen := flag.String("listen", "", "receive: listen on this UDP address (and TCP on another port), print \"ADDR CERT TCPADDR\" and serve one connection")
	dial := flag.String("dial", "", "send: dial the receiver at this address")
	cert := flag.String("cert", "", "the receiver's certificate (hex DER), as it printed it")
	flag.StringVar(&w.tcpAddr, "tcp-addr", "", "the receiver's TCP address, as it printed it (for -over tcp)")
	flag.StringVar(&w.mode, "mode", "bulk", "the workload: bulk, requests or connect")
	flag.StringVar(&w.over, "over", "quic", "what carries the workload: quic, or tcp for the reference")
	flag.IntVar(&w.streams, "streams", 1, "parallel streams (bulk, requests)")
	flag.DurationVar(&w.duration, "duration", 3*time.Second, "how long to run the workload")
	flag.Parse()
	if err := run(*listen, *dial, *cert, w); err != nil {
		fmt.Fprintln(os.Stderr, "quicceiling:", err)
		os.Exit(1)
	}
}

// workload is what the sender runs and how.
type workload struct {
	mode     string // bulk, requests or connect
	over     string // quic or tcp
	tcpAddr  string // the receiver's TCP address, for over == "tcp"
	streams  int
	duration time.Duration
}

func (w workload) check() error {
	switch {
	case w.mode != "bulk" && w.mode != "requests" && w.mode != "connect":
		return fmt.Errorf("-mode %q: want bulk, requests or connect", w.mode)
	case w.over != "quic" && w.over != "tcp":
		return fmt.Errorf("-over %q: want quic or tcp", w.over)
	case w.streams < 1:
		return fmt.Errorf("-streams %d: want at least 1", w.streams)
	}
	return nil
}

// runLimit bounds a whole run, so a stuck peer cannot hang a benchmark.
const runLimit = 2 * time.Minute

func run(listen, dial, cert string, w workload) error {
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	defer cancel()
	switch {
	case listen != "" && dial != "":
		return errors.New("-listen and -dial exclude each other")
	case listen != "":
		return receive(ctx, listen, os.Stdout)
	}
	if err := w.check(); err != nil {
		return err
	}
	switch {
	case dial != "" && w.over == "tcp" && w.tcpAddr == "":
		// (Loopback takes it from the receiver's announcement.)
		return errors.New("-over tcp needs -tcp-addr")
	case dial != "":
		der, err := hex.DecodeString(cert)
		if err != nil || len(der) == 0 {
			return fmt.Errorf("-cert: want the receiver's certificate in hex: %v", err)
		}
		return report(ctx, dial, der, w)
	default:
		return loopback(ctx, w)
	}
}

// report runs the workload against the receiver at addr and prints the
// figure.
func report(ctx context.Context, addr string, der []byte, w workload) error {
	tcpAddr := ""
	if w.over == "tcp" {
		tcpAddr = w.tcpAddr
	}
	open, closeConn, err := dial(ctx, addr, der, tcpAddr)
	if err != nil {
		return err
	}
	defer closeConn()
	head := fmt.Sprintf("quicceiling mode=%s over=%s", w.mode, w.over)
	switch w.mode {
	case "bulk":
		mbps, err := bulk(ctx, open, w.streams, w.duration)
		if err != nil {
			return err
		}
		fmt.Printf("%s streams=%d MBps=%.0f\n", head, w.streams, mbps)
	case "requests":
		l, err := requests(ctx, open, w.streams, w.duration)
		if err != nil {
			return err
		}
		fmt.Printf("%s streams=%d rps=%.0f p50_ms=%.3f p99_ms=%.3f\n", head, w.streams,
			float64(l.count)/l.elapsed.Seconds(), ms(l.p50), ms(l.p99))
	case "connect":
		l, err := connects(ctx, open, w.duration)
		if err != nil {
			return err
		}
		fmt.Printf("%s count=%d p50_ms=%.3f p99_ms=%.3f\n", head, l.count, ms(l.p50), ms(l.p99))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// loopback runs the receiver as a second process of this program on
// 127.0.0.1, so sender and receiver each have their own runtime as two
// connet clients do.
func loopback(ctx context.Context, w workload) error {
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
	f := strings.Fields(line)
	if len(f) != 3 {
		return fmt.Errorf("receiver announced %q, want \"ADDR CERT TCPADDR\"", line)
	}
	der, err := hex.DecodeString(f[1])
	if err != nil {
		return fmt.Errorf("receiver announced %q: %w", line, err)
	}
	w.tcpAddr = f[2]
	return report(ctx, f[0], der, w)
}
