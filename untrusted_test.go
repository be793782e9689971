package connet_test

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/testcert"
)

// TestUntrustedServerEndsConnect: a certificate the client cannot verify
// ends Connect at once (not at its deadline) with ErrUntrustedServer, and
// the x509 reason can be told apart with errors.As.
func TestUntrustedServerEndsConnect(t *testing.T) {
	h := newHarness(t)
	other, err := testcert.New("localhost")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		opts   []connet.ClientOption
		reason func(error) bool
	}{
		{"wrong CA", []connet.ClientOption{connet.ClientControlCAs(other.Pool)}, func(err error) bool {
			var e x509.UnknownAuthorityError
			return errors.As(err, &e)
		}},
		{"wrong name", []connet.ClientOption{connet.ClientControlServerName("other.example")}, func(err error) bool {
			var e x509.HostnameError
			return errors.As(err, &e) && e.Host == "other.example"
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The deadline is far beyond what the failure takes; hitting
			// it means the client retried instead of giving up.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := connet.Connect(ctx, h.clientOptions("token-d", tt.opts...)...)
			if !errors.Is(err, connet.ErrUntrustedServer) || !tt.reason(err) {
				t.Fatalf("Connect: %v, want ErrUntrustedServer with the x509 reason", err)
			}
			if ctx.Err() != nil {
				t.Fatal("Connect ended only at its deadline")
			}
		})
	}
}

// TestUntrustedControlEndsRelay: the same for a relay run apart.
func TestUntrustedControlEndsRelay(t *testing.T) {
	h := newHarness(t, with(connet.ServerRelayTokens([]string{"relay-token"}, nil)), withRelayControl)
	other, err := testcert.New("localhost")
	if err != nil {
		t.Fatal(err)
	}
	r, err := connet.NewRelay(
		connet.RelayToken("relay-token"),
		connet.RelayControlAddress(h.relayControlAddr),
		connet.RelayControlCAs(other.Pool),
		connet.RelayIngressAt(connet.RelayIngress{Addr: "127.0.0.1:0", Hostports: []string{"127.0.0.1:0"}}),
		connet.RelayStoreDir(t.TempDir()),
		connet.RelayLogger(testLogger(t)),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = r.Run(ctx)
	var unknown x509.UnknownAuthorityError
	if !errors.Is(err, connet.ErrUntrustedServer) || !errors.As(err, &unknown) {
		t.Fatalf("Run: %v, want ErrUntrustedServer with x509.UnknownAuthorityError", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run ended only at its deadline")
	}
}
