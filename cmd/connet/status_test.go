package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/testcert"
)

// startClient runs a control server and a client with a source in process,
// on loopback, and returns the client (its status page is served).
func startClient(t *testing.T) *connet.Client {
	t.Helper()
	cert, err := testcert.New("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := connet.NewServer(
		connet.ServerIngress(connet.Ingress{Addr: "127.0.0.1:0", Cert: cert.TLS}),
		connet.ServerClientTokens("token"),
		connet.ServerStoreDir(t.TempDir()),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	connectCtx, cancelConnect := context.WithTimeout(ctx, 10*time.Second)
	defer cancelConnect()
	cl, err := connet.Connect(connectCtx,
		connet.ClientToken("token"),
		connet.ClientControlAddress(srv.Addrs(ctx)[0].String()),
		connet.ClientControlCAs(cert.Pool),
		connet.ClientDirectAddress("127.0.0.1:0"),
		connet.ClientStatusAddress("127.0.0.1:0"),
		connet.ClientNatPMP(connet.NatPMPDisabled),
		connet.ClientBuildVersion("v9.9.9-test"),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	if _, err := cl.Source(ctx, connet.NewSourceConfig("web")); err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestStatusOfARunningClient(t *testing.T) {
	cl := startClient(t)
	addr := cl.StatusAddr().String()

	out, err := run(t, "status", addr)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	lines := strings.Split(out, "\n")
	head := "connet client " + cl.Status().ID + ", version v9.9.9-test, started "
	if !strings.HasPrefix(lines[0], head) {
		t.Fatalf("first line %q, want it to start with %q", lines[0], head)
	}
	if !strings.HasPrefix(lines[1], "direct   "+cl.DirectAddr().String()) || !strings.Contains(lines[2], "connected since") {
		t.Fatalf("no direct address or control connection:\n%s", out)
	}
	// The source has no destination: its row shows it without peers.
	if got := strings.Fields(tableRow(out, "web")); strings.Join(got, " ") != "web source any 0/0 - - - -" {
		t.Fatalf("source row %q:\n%s", got, out)
	}
	if !strings.Contains(out, "no relays offered") {
		t.Fatalf("a server without relays, but the relays are not said to be missing:\n%s", out)
	}

	raw, err := run(t, "status", "--json", addr)
	if err != nil {
		t.Fatal(err)
	}
	var doc connet.ClientStatus
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatalf("--json printed no JSON: %v\n%s", err, raw)
	}
	if doc.Kind != "client" || doc.Version != "v9.9.9-test" || doc.Started.IsZero() || doc.ID != cl.Status().ID || doc.Sources[0].Name != "web" {
		t.Fatalf("--json document: %+v", doc)
	}
}

func TestStatusTakesTheAddressFromTheConfig(t *testing.T) {
	cl := startClient(t)
	cfg := writeFile(t, t.TempDir(), "client.toml", `
[client]
token = "t"
status-addr = "`+cl.StatusAddr().String()+`"
`)
	out, err := run(t, "status", "--config", cfg)
	if err != nil || !strings.HasPrefix(out, "connet client "+cl.Status().ID) {
		t.Fatalf("status --config: %v\n%s", err, out)
	}
}

func TestStatusWithNothingListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	out, err := run(t, "status", addr)
	if err == nil || out != "" || !strings.HasPrefix(err.Error(), "no status server at "+addr+" (is connet running with status-addr set to it?)") {
		t.Fatalf("status of a closed port: %v, output %q", err, out)
	}
}

// serverDoc is a server's status page: two clients, the in-process relay
// and a relay that joined over the network.
const serverDoc = `{
  "kind": "server",
  "version": "v1.2.3",
  "started": "2026-01-02T03:04:05Z",
  "control": {
    "clients": [
      {"id": "AAAAAAAAAAAAAAAA", "metadata": "home", "observed": "192.0.2.10:19192",
       "endpoints": [{"name": "web", "role": "destination", "route": "any"}]},
      {"id": "BBBBBBBBBBBBBBBB", "observed": "198.51.100.7:40000",
       "endpoints": [{"name": "web", "role": "source", "route": "relay"}, {"name": "ssh", "role": "source", "route": "any"}]}
    ],
    "relays": [
      {"id": "RRRRRRRRRRRRRRRR", "hostports": ["relay.example.com:19191"], "in_process": true, "since": "2026-01-02T03:04:05Z"},
      {"id": "SSSSSSSSSSSSSSSS", "hostports": ["203.0.113.5:19191", "[2001:db8::5]:19191"], "remote": "203.0.113.5:51000",
       "metadata": "eu-1", "version": "v1.2.2", "since": "2026-01-02T03:05:00Z"}
    ]
  },
  "relay": {
    "id": "RRRRRRRRRRRRRRRR",
    "clients": [{"id": "BBBBBBBBBBBBBBBB", "remote": "198.51.100.7:40000", "active_streams": 3}]
  }
}`

func TestRenderServerStatus(t *testing.T) {
	var out bytes.Buffer
	started, _ := time.Parse(time.RFC3339, "2026-01-02T03:04:05Z")
	if err := renderStatus(&out, []byte(serverDoc), started.Add(90*time.Minute)); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	lines := strings.Split(text, "\n")
	if want := "connet server, version v1.2.3, started " + stamp(started) + " (up 1h30m0s)"; lines[0] != want {
		t.Fatalf("first line %q, want %q", lines[0], want)
	}
	rows := map[string]string{
		"AAAAAAAAAAAAAAAA": "AAAAAAAAAAAAAAAA home 192.0.2.10:19192 web (destination, any)",
		"BBBBBBBBBBBBBBBB": "BBBBBBBBBBBBBBBB - 198.51.100.7:40000 web (source, relay), ssh (source, any)",
		"RRRRRRRRRRRRRRRR": "RRRRRRRRRRRRRRRR relay.example.com:19191 in process - - " + stamp(started),
		"SSSSSSSSSSSSSSSS": "SSSSSSSSSSSSSSSS 203.0.113.5:19191,[2001:db8::5]:19191 203.0.113.5:51000 v1.2.2 eu-1 " + stamp(started.Add(55*time.Second)),
	}
	for first, want := range rows {
		if got := strings.Join(strings.Fields(tableRow(text, first)), " "); got != want {
			t.Errorf("row %q, want %q", got, want)
		}
	}
	for _, want := range []string{
		"CLIENT", "RELAY", "in-process relay RRRRRRRRRRRRRRRR",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in:\n%s", want, text)
		}
	}
	// The relay's clients, after the in-process relay's heading.
	relayPart := text[strings.Index(text, "in-process relay"):]
	if got := strings.Join(strings.Fields(tableRow(relayPart, "BBBBBBBBBBBBBBBB")), " "); got != "BBBBBBBBBBBBBBBB 198.51.100.7:40000 3" {
		t.Errorf("relay client row %q", got)
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("rendered:\n%s", text)
	}
}

func TestRenderRecognisesDocumentsWithoutKind(t *testing.T) {
	for doc, want := range map[string]string{
		`{"id": "X", "direct_addr": "[::]:19192", "control": {}}`: "client",
		`{"control": {"clients": []}}`:                            "server",
		`{"id": "X", "clients": [], "control": {}}`:               "relay",
	} {
		if got, err := statusKind([]byte(doc)); err != nil || got != want {
			t.Errorf("statusKind(%s) = %q, %v; want %q", doc, got, err, want)
		}
	}
	if _, err := statusKind([]byte(`{"hello": 1}`)); err == nil {
		t.Error("a document of no known shape was recognised")
	}
}

// tableRow is the first line of out that starts with first.
func tableRow(out, first string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, first+" ") {
			return l
		}
	}
	return ""
}

// TestRenderClientBehindSymmetricNAT: the control line says when the
// client found its NAT maps per destination.
func TestRenderClientBehindSymmetricNAT(t *testing.T) {
	doc := `{"id": "AAAAAAAAAAAAAAAA", "direct_addr": "[::]:19192",
  "control": {"server": "203.0.113.10:19190", "connected": true, "observed": "203.0.113.20:4242",
    "nat": "per-destination", "since": "2026-01-02T03:04:05Z"}}`
	var out bytes.Buffer
	if err := renderStatus(&out, []byte(doc), time.Now()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "observed as 203.0.113.20:4242 (symmetric NAT)") {
		t.Fatalf("no symmetric NAT on the control line:\n%s", out.String())
	}
}

func TestRenderClientPortMapping(t *testing.T) {
	expires, _ := time.Parse(time.RFC3339, "2026-01-02T05:04:05Z")
	for _, tc := range []struct{ doc, want string }{
		{`{"kind": "client", "id": "X", "direct_addr": "[::]:19192", "control": {},
		   "port_mapping": {"mode": "system", "protocol": "pcp", "gateway": "192.168.1.1",
		   "external": "203.0.113.20:19192", "expires": "2026-01-02T05:04:05Z"}}`,
			"portmap  203.0.113.20:19192  by pcp at 192.168.1.1, expires " + stamp(expires) + " (nat-pmp system)"},
		{`{"kind": "client", "id": "X", "direct_addr": "[::]:19192", "control": {}, "port_mapping": {"mode": "dial"}}`,
			"portmap  none (nat-pmp dial)"},
		{`{"kind": "client", "id": "X", "direct_addr": "[::]:19192", "control": {}}`, ""},
	} {
		var out bytes.Buffer
		if err := renderStatus(&out, []byte(tc.doc), expires); err != nil {
			t.Fatal(err)
		}
		text := out.String()
		if tc.want == "" {
			if strings.Contains(text, "portmap") {
				t.Errorf("a port mapping line with port mapping off:\n%s", text)
			}
			continue
		}
		if !slices.Contains(strings.Split(text, "\n"), tc.want) {
			t.Errorf("no line %q in:\n%s", tc.want, text)
		}
	}
}

// TestRenderClientEndpointsAndErrors renders every part of a client's
// tables: relays connected or not, an endpoint with a peer on two paths
// (one stale) and a peer with none, an endpoint without peers, and the
// last errors of each part, in order.
func TestRenderClientEndpointsAndErrors(t *testing.T) {
	doc := `{"kind": "client", "id": "C", "direct_addr": "[::]:19192",
  "control": {"server": "ctl:19190", "connected": true, "transport": "tcp", "last_error": "control flaked"},
  "relays": [
    {"id": "R1", "hostports": ["r1:19191", "r1b:19191"], "connected": true, "transport": "tcp", "remote": "10.0.0.1:19191", "rtt_ms": 1.5},
    {"id": "R2", "hostports": ["r2:19191"], "connected": false, "last_error": "relay down"}],
  "destinations": [{"name": "web", "route": "any", "active_connections": 1, "total_connections": 3, "refused": "name not allowed",
    "peers": [
      {"id": "P1", "paths": [{"kind": "direct-out", "remote": "192.0.2.4:5", "rtt_ms": 2},
                             {"kind": "relay", "remote": "r1:19191", "rtt_ms": 9.25, "stale": true}]},
      {"id": "P2", "paths": []}]}],
  "sources": [{"name": "db", "route": "relay", "active_connections": 0, "total_connections": 0, "last_error": "no peer"}]}`
	var out bytes.Buffer
	if err := renderStatus(&out, []byte(doc), time.Now()); err != nil {
		t.Fatal(err)
	}
	want := `connet client C, version unknown
direct   [::]:19192
control  ctl:19190  connected over tcp since -

RELAY  HOSTPORTS           CONNECTED  REMOTE          RTT
R1     r1:19191,r1b:19191  yes (tcp)  10.0.0.1:19191  1.50ms
R2     r2:19191            no         -               -

ENDPOINT  ROLE         ROUTE  CONNS(ACTIVE/TOTAL)  PEER  PATH           REMOTE       RTT
web       destination  any    1/3                  P1    direct-out     192.0.2.4:5  2.00ms
                                                         relay (stale)  r1:19191     9.25ms
                                                   P2    none           -            -
db        source       relay  0/0                  -     -              -            -

LAST ERRORS
  control: control flaked
  relay R2: relay down
  destination web: name not allowed
  source db: no peer
`
	if got := out.String(); got != want {
		t.Fatalf("rendered:\n%s\nwant:\n%s", got, want)
	}
}
