package forward

import (
	"testing"

	"github.com/p2pconnet/connet/internal/testcert"
)

// newTestPKI makes a throwaway CA "<name> CA" with a server certificate
// (localhost, 127.0.0.1) and a client certificate "client-<name>", written
// as PEM files for the settings under test and for external programs
// (openssl, nginx).
func newTestPKI(t *testing.T, name string) *testcert.PKI {
	t.Helper()
	p, err := testcert.NewPKI(t.TempDir(), name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
