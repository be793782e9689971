package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/natlab"
	"github.com/p2pconnet/connet/internal/testcert"
)

// Fixed addresses inside the lab. Every host has its own namespace, so the
// same loopback ports can be used on each.
const (
	controlPort = "19190"
	relayPort   = "19191"
	servicePort = "3000"
	sourcePort  = "8000"
	statusAddr  = "127.0.0.1:19182"
)

// deployment is a control server on the lab's server host, with helpers to
// run clients on the lab's other hosts.
type deployment struct {
	t      *testing.T
	lab    *natlab.Lab
	dir    string
	server *natlab.Proc
	// natPMP is the nat-pmp option of clients by token, "disabled" for a
	// token not listed: no client asks a gateway unless the test (or the
	// topology, see newDeployment) says so.
	natPMP map[string]string
	// logLevel is the server's and the clients' log-level.
	logLevel string
}

// newDeployment is a deployment whose server and clients log at debug
// level, so that a failing test shows what each did.
func newDeployment(t *testing.T, topo natlab.Topology) *deployment {
	t.Helper()
	return newDeploymentLogging(t, topo, "debug")
}

// newBenchDeployment is a deployment whose server and clients log at the
// default level, as a user's do: a measurement then sees what users get,
// not the cost of debug lines written for every connection.
func newBenchDeployment(t *testing.T, topo natlab.Topology) *deployment {
	t.Helper()
	return newDeploymentLogging(t, topo, "info")
}

func newDeploymentLogging(t *testing.T, topo natlab.Topology, logLevel string) *deployment {
	t.Helper()
	natlab.Require(t)
	lab := natlab.New(t, topo)
	lab.VerifyNATs(t)
	d := &deployment{t: t, lab: lab, dir: t.TempDir(), natPMP: map[string]string{}, logLevel: logLevel}
	if lab.Gateway != nil {
		// The topology is about A's gateway: A's clients use it, with
		// the option's default.
		d.natPMP["token-a"] = "system"
	}
	cert, err := testcert.New(lab.Server.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cert.WriteFiles(d.dir); err != nil {
		t.Fatal(err)
	}
	d.write("server.toml", fmt.Sprintf(`
log-level = %[7]q
[server]
tokens = ["token-a", "token-b"]
store-dir = %[1]q
[[server.ingress]]
addr = "%[2]s:%[3]s"
cert-file = %[4]q
key-file = %[5]q
[[server.relay-ingress]]
addr = "%[2]s:%[6]s"
hostports = ["%[2]s:%[6]s"]
`, filepath.Join(d.dir, "store"), lab.Server.Addr, controlPort, d.path("cert.pem"), d.path("key.pem"), relayPort, logLevel))
	return d
}

func (d *deployment) path(name string) string { return filepath.Join(d.dir, name) }

func (d *deployment) write(name, content string) {
	d.t.Helper()
	if err := os.WriteFile(d.path(name), []byte(content), 0o600); err != nil {
		d.t.Fatal(err)
	}
}

func (d *deployment) startServer() {
	d.t.Helper()
	d.server = d.lab.Server.Start(d.t, "server", connetBin, "server", "--config", d.path("server.toml"))
}

// clientConfig is the [client] table shared by the lab's clients; endpoints
// follows it.
func (d *deployment) clientConfig(token, endpoints string) string {
	return fmt.Sprintf(`
log-level = %q
[client]
token = %q
server-addr = "%s:%s"
server-cas-file = %q
direct-addr = ":19192"
status-addr = %q
nat-pmp = %q
%s`, d.logLevel, token, d.lab.Server.Addr, controlPort, d.path("cert.pem"), statusAddr, cmp.Or(d.natPMP[token], "disabled"), endpoints)
}

// writeDirectAndRelayed writes destination.toml, A's service as "web" and
// as "relayed" (relayed paths only), and source.toml, B's sources of both
// at directPort and relayedPort.
func (d *deployment) writeDirectAndRelayed(directPort, relayedPort string) {
	d.write("destination.toml", d.clientConfig("token-a", fmt.Sprintf(`
[client.destinations.web]
url = "tcp://127.0.0.1:%[1]s"
[client.destinations.relayed]
url = "tcp://127.0.0.1:%[1]s"
route = "relay"
`, servicePort)))
	d.write("source.toml", d.clientConfig("token-b", fmt.Sprintf(`
[client.sources.web]
url = "tcp://127.0.0.1:%s"
[client.sources.relayed]
url = "tcp://127.0.0.1:%s"
route = "relay"
`, directPort, relayedPort)))
}

// startDestination runs a client on A exposing A's service as "web".
func (d *deployment) startDestination(route string) *natlab.Proc {
	d.t.Helper()
	d.write("destination.toml", d.clientConfig("token-a", fmt.Sprintf(`
[client.destinations.web]
url = "tcp://127.0.0.1:%s"
route = %q
`, servicePort, route)))
	return d.startClient(d.lab.A, "destination", d.path("destination.toml"))
}

// startSource runs a client on B with a source "web" on B's loopback.
func (d *deployment) startSource(route string) *natlab.Proc {
	d.t.Helper()
	d.write("source.toml", d.clientConfig("token-b", fmt.Sprintf(`
[client.sources.web]
url = "tcp://127.0.0.1:%s"
route = %q
`, sourcePort, route)))
	return d.startClient(d.lab.B, "source", d.path("source.toml"))
}

// startDestinationAt runs a client on A named name (its metadata), with
// direct address :directPort, exposing A's 127.0.0.1:servicePort as "web".
// Several can run side by side.
func (d *deployment) startDestinationAt(name string, directPort, servicePort int) *natlab.Proc {
	d.t.Helper()
	d.write(name+".toml", fmt.Sprintf(`
log-level = "debug"
[client]
token = "token-a"
metadata = %q
server-addr = "%s:%s"
server-cas-file = %q
direct-addr = ":%d"
nat-pmp = "disabled"
[client.destinations.web]
url = "tcp://127.0.0.1:%d"
`, name, d.lab.Server.Addr, controlPort, d.path("cert.pem"), directPort, servicePort))
	return d.startClient(d.lab.A, name, d.path(name+".toml"))
}

// serveText answers every HTTP request at addr in h's namespace with body.
func serveText(t *testing.T, h *natlab.Host, addr string, body string) {
	serveTCP(t, h, addr, func(conn net.Conn) {
		// Read the request before answering: closing with it unread would
		// reset the connection under the response.
		if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
			return
		}
		_, _ = fmt.Fprintf(conn, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	})
}

func (d *deployment) startClient(h *natlab.Host, name, config string) *natlab.Proc {
	cmd := h.Command(connetBin, "--config", config)
	cmd.Env = append(os.Environ(), "CONNET_CACHE_DIR="+filepath.Join(d.dir, name+"-cache"))
	return h.StartCmd(d.t, name, cmd)
}

// serveHTTP serves body over HTTP on A's loopback, as the destination's
// service.
func (d *deployment) serveHTTP(body []byte) {
	d.t.Helper()
	ln, err := d.lab.A.ListenTCP("127.0.0.1:" + servicePort)
	if err != nil {
		d.t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(body)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	d.t.Cleanup(func() { _ = srv.Close() })
}

// fetch gets the service through the source on B.
func (d *deployment) fetch(ctx context.Context) ([]byte, error) {
	return d.lab.B.HTTPGet(ctx, "http://127.0.0.1:"+sourcePort+"/")
}

// fetchEventually retries fetch until it returns want, for at most limit; it
// returns how long that took.
func (d *deployment) fetchEventually(want []byte, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	var lastErr error
	for time.Since(start) < limit {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := d.fetch(ctx)
		cancel()
		if err == nil && bytes.Equal(got, want) {
			return time.Since(start), nil
		}
		if err == nil {
			err = fmt.Errorf("got %d bytes that differ from the %d served", len(got), len(want))
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("no correct response within %v: %w", limit, lastErr)
}

// status reads a client's status JSON on host h.
func status(ctx context.Context, h *natlab.Host) (connet.ClientStatus, error) {
	var st connet.ClientStatus
	body, err := h.HTTPGet(ctx, "http://"+statusAddr+"/")
	if err != nil {
		return st, err
	}
	err = json.Unmarshal(body, &st)
	return st, err
}

// waitStatus polls h's status until ok accepts it, for at most limit.
func waitStatus(h *natlab.Host, limit time.Duration, ok func(connet.ClientStatus) bool) (connet.ClientStatus, time.Duration, error) {
	start := time.Now()
	var st connet.ClientStatus
	var err error
	for time.Since(start) < limit {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err = status(ctx, h)
		cancel()
		if err == nil && ok(st) {
			return st, time.Since(start), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err == nil {
		err = errors.New("condition not met")
	}
	return st, 0, fmt.Errorf("status of %s after %v: %w (last: %+v)", h.Name, limit, err, st)
}

// sourcePaths returns the paths the source shows to its destination peer.
func sourcePaths(st connet.ClientStatus) []connet.PathStatus {
	if len(st.Sources) != 1 || len(st.Sources[0].Peers) != 1 {
		return nil
	}
	return st.Sources[0].Peers[0].Paths
}

func hasDirect(st connet.ClientStatus) bool { return hasPath(st, "direct-outgoing", "direct-incoming") }

func hasRelay(st connet.ClientStatus) bool { return hasPath(st, "relay") }

func hasPath(st connet.ClientStatus, kinds ...string) bool {
	for _, p := range sourcePaths(st) {
		if slices.Contains(kinds, p.Kind) {
			return true
		}
	}
	return false
}

func randomBody(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// serveTCP listens at addr in h's namespace and runs handle for each
// connection (closing it afterwards) until the test ends.
func serveTCP(t *testing.T, h *natlab.Host, addr string, handle func(net.Conn)) {
	t.Helper()
	ln, err := h.ListenTCP(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				handle(conn)
			}()
		}
	}()
}
