package natlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Available reports why the lab cannot run here, or nil: it needs root, ip
// and nft, and must be able to create a namespace and load a NAT ruleset in
// it (a throwaway namespace is created and deleted to find out).
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("natlab: needs root")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("natlab: %s not found (apt-get install -y iproute2 nftables): %w", bin, err)
		}
	}
	ctx := context.Background()
	h := &Host{Name: newPrefix() + "chk"}
	if _, err := run(ctx, "", "ip", "netns", "add", h.Name); err != nil {
		return fmt.Errorf("natlab: cannot create a network namespace: %w", err)
	}
	defer run(ctx, "", "ip", "netns", "del", h.Name)
	if err := h.nftApply(ctx, routerRuleset(SymmetricNAT)); err != nil {
		return fmt.Errorf("natlab: cannot load a NAT ruleset: %w", err)
	}
	return nil
}

// Require skips the test when the lab is not available, and fails it
// instead when CI=true, so that CI cannot silently skip lab tests.
func Require(t testing.TB) {
	t.Helper()
	err := Available()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("natlab unavailable under CI=true: %v", err)
	}
	t.Skipf("natlab unavailable: %v", err)
}
