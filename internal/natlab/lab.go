package natlab

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// labSeq makes namespace prefixes unique within the process; the PID makes
// them unique across processes.
var labSeq atomic.Uint64

// Lab is one built topology. All its namespaces are deleted in the cleanup
// of the test that created it.
type Lab struct {
	Topology Topology
	// Server is on the internet with two addresses: Server.Addrs[0] ==
	// Server.Addr and Server.Addrs[1], the second one.
	Server *Host
	// A and B are the client hosts.
	A, B *Host
	// Gateway is the port mapping gateway of topologies that have one
	// (SymmetricPortMap), else nil.
	Gateway *Gateway

	internet *Host    // holds the internet bridge
	prefix   string   // of every namespace name of this lab
	names    []string // namespaces created, deleted at cleanup
	hosts    []*Host  // every namespace with an open handle
}

// New builds topo and registers its teardown with t.Cleanup. It fails the
// test if the lab cannot be built; call Require first to skip where the lab
// is unavailable.
func New(t testing.TB, topo Topology) *Lab {
	t.Helper()
	sp, err := topo.spec()
	if err != nil {
		t.Fatal(err)
	}
	l := &Lab{Topology: topo, prefix: newPrefix()}
	// Registered before anything exists, so a half-built lab is removed too.
	t.Cleanup(func() {
		if err := l.close(); err != nil {
			t.Errorf("natlab: teardown %s: %v", topo, err)
		}
	})
	b := &builder{prefix: l.prefix}
	b.plan(l, sp)
	if err := b.create(context.Background(), l); err != nil {
		t.Fatalf("natlab: build %s: %v", topo, err)
	}
	t.Logf("natlab: %s lab in namespaces %s{%s}", topo, l.prefix, strings.Join(roles(l.hosts), ","))
	if sp.gatewayA {
		l.Gateway = l.StartGateway(t, l.A, LabGateway())
	}
	return l
}

// newPrefix returns "nl<pid hex>-<seq base36>-". With roles of at most
// three characters, names stay within 15 characters for PIDs below 2^24
// and the first 1296 labs of a process.
func newPrefix() string {
	return "nl" + strconv.FormatInt(int64(os.Getpid()), 16) + "-" +
		strconv.FormatUint(labSeq.Add(1)-1, 36) + "-"
}

// Prefix is the common prefix of the names of this lab's namespaces.
func (l *Lab) Prefix() string { return l.prefix }

// Namespaces lists the names of the lab's namespaces (useful for
// debugging with ip netns exec, tcpdump, conntrack -L).
func (l *Lab) Namespaces() []string { return append([]string(nil), l.names...) }

// Routers lists the NAT routers of the lab, inner ones after outer ones.
func (l *Lab) Routers() []*Host {
	var rs []*Host
	for _, h := range l.hosts {
		if h != l.internet && h != l.Server && h != l.A && h != l.B {
			rs = append(rs, h)
		}
	}
	return rs
}

func roles(hs []*Host) []string {
	var rs []string
	for _, h := range hs {
		rs = append(rs, h.Role)
	}
	return rs
}

// close deletes exactly the namespaces this lab created. Processes still
// inside one keep it alive until they exit, but its name is gone.
func (l *Lab) close() error {
	for _, h := range l.hosts {
		h.ns.Close()
	}
	if len(l.names) == 0 {
		return nil
	}
	var del strings.Builder
	for _, n := range l.names {
		fmt.Fprintf(&del, "netns del %s\n", n)
	}
	if _, err := run(context.Background(), del.String(), "ip", "-force", "-batch", "-"); err != nil {
		return fmt.Errorf("natlab: delete namespaces: %w", err)
	}
	l.names = nil
	return nil
}
