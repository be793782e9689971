package portmap

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"time"

	"github.com/p2pconnet/connet/internal/network"
	"github.com/p2pconnet/connet/internal/portmap/pcp"
)

// pcpClient speaks PCP's MAP opcode (see package pcp for why it is our
// own). The nonce stays the same for the life of the client, so renewals
// and the deletion are recognized as the same mapping's.
type pcpClient struct {
	net       network.Network
	gw, local netip.Addr
	nonce     [12]byte
}

func newPCP(n network.Network, gw, local netip.Addr) *pcpClient {
	c := &pcpClient{net: n, gw: gw, local: local}
	_, _ = rand.Read(c.nonce[:])
	return c
}

func (c *pcpClient) mapPort(ctx context.Context, port, ext uint16, lifetime time.Duration) (result, error) {
	resp, err := c.do(ctx, port, ext, uint32(lifetime/time.Second))
	if err != nil {
		return result{}, err
	}
	return result{
		external: netip.AddrPortFrom(resp.External, resp.ExternalPort),
		lifetime: time.Duration(resp.Lifetime) * time.Second,
		epoch:    resp.Epoch,
		hasEpoch: true,
	}, nil
}

func (c *pcpClient) unmap(ctx context.Context, port, ext uint16) error {
	_, err := c.do(ctx, port, ext, 0)
	return err
}

// do sends a MAP request from the local address facing the gateway (the
// one the request names as the client's) and waits for its answer (see
// gatewayRPC).
func (c *pcpClient) do(ctx context.Context, port, ext uint16, lifetime uint32) (pcp.MapResponse, error) {
	build := func(local netip.Addr) []byte {
		req := pcp.MapRequest{
			Lifetime:          lifetime,
			Client:            local,
			Nonce:             c.nonce,
			InternalPort:      port,
			SuggestedPort:     ext,
			SuggestedExternal: netip.IPv4Unspecified(),
		}
		return req.Marshal()
	}
	var resp pcp.MapResponse
	answer := func(b []byte) (bool, error) {
		var err error
		if resp, err = pcp.ParseMapResponse(b); err != nil {
			return false, err
		}
		if resp.Result != pcp.Success {
			return false, fmt.Errorf("pcp: %s", pcp.ResultText(resp.Result))
		}
		// Another request's answer is skipped.
		return resp.Nonce == c.nonce && resp.InternalPort == port, nil
	}
	err := gatewayRPC(ctx, c.net, netip.AddrPortFrom(c.gw, pcp.Port), c.local, build, answer)
	return resp, err
}
