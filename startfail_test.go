package connet_test

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/testcert"
)

// TestFailedConstructorsRemoveTheTemporaryStore: without a store dir,
// NewServer and NewRelay make a temporary one that Run removes; when they
// fail (here: the status address is taken) no Run will, so they must.
func TestFailedConstructorsRemoveTheTemporaryStore(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cert, err := testcert.New("localhost")
	if err != nil {
		t.Fatal(err)
	}
	_, err = connet.NewServer(
		connet.ServerIngress(connet.Ingress{Addr: "127.0.0.1:0", Cert: cert.TLS}),
		connet.ServerClientTokens("t"),
		connet.ServerStatusAddress(taken.Addr().String()),
	)
	if err == nil {
		t.Fatal("NewServer succeeded with its status address taken")
	}
	_, err = connet.NewRelay(
		connet.RelayToken("t"),
		connet.RelayIngressAt(connet.RelayIngress{Addr: "127.0.0.1:0", Hostports: []string{"127.0.0.1:1"}}),
		connet.RelayStatusAddress(taken.Addr().String()),
	)
	if err == nil {
		t.Fatal("NewRelay succeeded with its status address taken")
	}
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left behind: %s", filepath.Join(tmp, e.Name()))
	}
}
