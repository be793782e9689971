package portmap

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/p2pconnet/connet/internal/portmap/pcp"
)

// pcpClient speaks PCP's MAP opcode (see package pcp for why it is our
// own). The nonce stays the same for the life of the client, so renewals
// and the deletion are recognized as the same mapping's.
type pcpClient struct {
	gw, local netip.Addr
	nonce     [12]byte
}

func newPCP(gw, local netip.Addr) *pcpClient {
	c := &pcpClient{gw: gw, local: local}
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

// do sends a MAP request and waits for its answer, resending on the
// schedule of RFC 6887 section 8.1.1 (from 3 s, doubling) but starting
// at 250 ms as NAT-PMP does, since the gateway is on the LAN.
func (c *pcpClient) do(ctx context.Context, port, ext uint16, lifetime uint32) (pcp.MapResponse, error) {
	var laddr *net.UDPAddr
	if c.local.IsValid() {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.local, 0))
	}
	conn, err := net.DialUDP("udp4", laddr, net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.gw, pcp.Port)))
	if err != nil {
		return pcp.MapResponse{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	client := c.local
	if !client.IsValid() {
		client = conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	}
	req := pcp.MapRequest{
		Lifetime:          lifetime,
		Client:            client,
		Nonce:             c.nonce,
		InternalPort:      port,
		SuggestedPort:     ext,
		SuggestedExternal: netip.IPv4Unspecified(),
	}
	msg := req.Marshal()
	buf := make([]byte, pcp.MaxLen)
	for wait := 250 * time.Millisecond; ; wait *= 2 {
		if _, err := conn.Write(msg); err != nil {
			return pcp.MapResponse{}, err
		}
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		for {
			n, err := conn.Read(buf)
			if ctx.Err() != nil {
				return pcp.MapResponse{}, context.Cause(ctx)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break // resend
			}
			if err != nil {
				return pcp.MapResponse{}, err
			}
			resp, err := pcp.ParseMapResponse(buf[:n])
			if err != nil {
				return pcp.MapResponse{}, err
			}
			if resp.Result != pcp.Success {
				return resp, fmt.Errorf("pcp: %s", pcp.ResultText(resp.Result))
			}
			if resp.Nonce != c.nonce || resp.InternalPort != port {
				continue // an answer to another request
			}
			return resp, nil
		}
	}
}
