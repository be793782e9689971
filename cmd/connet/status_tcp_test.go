package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
)

// TestStatusShowsTCPFallback: a client that fell back to TCP shows it for
// its control connection, its relay and its relayed path.
func TestStatusShowsTCPFallback(t *testing.T) {
	now := time.Now()
	st := connet.ClientStatus{
		ProcessStatus: connet.ProcessStatus{Kind: "client", Started: now},
		Control:       connet.ControlStatus{Server: "ctl:19190", Connected: true, Transport: "tcp", Since: now},
		Relays:        []connet.RelayStatus{{ID: "R1", Hostports: []string{"ctl:19191"}, Connected: true, Remote: "203.0.113.10:19191", Transport: "tcp"}},
		Sources: []connet.EndpointStatus{{Name: "web", Route: "any", Peers: []connet.PeerStatus{{
			ID: "P1", Paths: []connet.PathStatus{{Kind: "relay-tcp", Remote: "203.0.113.10:19191", RTTms: 2}},
		}}}},
	}
	doc, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := renderStatus(&out, doc, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"connected over tcp since", "yes (tcp)", "relay-tcp"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}
