package connet_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/p2pconnet/connet"
)

// TestClientMetadataLimit: metadata the control server would refuse is
// refused by the option, before anything is sent.
func TestClientMetadataLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := connet.Connect(ctx,
		connet.ClientToken("token"),
		connet.ClientMetadata(strings.Repeat("m", 1025)),
		connet.ClientControlAddress("127.0.0.1:9"),
		connet.ClientDirectAddress("127.0.0.1:0"),
		connet.ClientNatPMP(connet.NatPMPDisabled),
	)
	if err == nil || !strings.Contains(err.Error(), "metadata of 1025 bytes") {
		t.Fatalf("Connect with 1025 bytes of metadata: %v, want a refusal naming the metadata", err)
	}
}

// TestEndpointNameLimit: a name the control server would refuse is refused
// when the endpoint is added.
func TestEndpointNameLimit(t *testing.T) {
	h := newHarness(t)
	c := h.connect("token-d")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	long := strings.Repeat("n", 257)
	if _, err := c.Destination(ctx, connet.DestinationConfig{Name: long}); err == nil || !strings.Contains(err.Error(), "name of 257 bytes") {
		t.Fatalf("Destination with a 257-byte name: %v, want a refusal naming its length", err)
	}
	if _, err := c.Source(ctx, connet.SourceConfig{Name: long}); err == nil || !strings.Contains(err.Error(), "name of 257 bytes") {
		t.Fatalf("Source with a 257-byte name: %v, want a refusal naming its length", err)
	}
}
