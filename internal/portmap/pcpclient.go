package portmap

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
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
// one the request names as the client's) and waits for its answer,
// resending on the schedule of RFC 6887 section 8.1.1 (from 3 s,
// doubling) but starting at 250 ms as NAT-PMP does, since the gateway is
// on the LAN.
func (c *pcpClient) do(ctx context.Context, port, ext uint16, lifetime uint32) (pcp.MapResponse, error) {
	gw := netip.AddrPortFrom(c.gw, pcp.Port)
	client := c.local
	if !client.IsValid() {
		var err error
		if client, err = localAddrFor(ctx, c.net, gw); err != nil {
			return pcp.MapResponse{}, err
		}
	}
	conn, err := c.net.ListenPacket(ctx, "udp4", netip.AddrPortFrom(client, 0).String())
	if err != nil {
		return pcp.MapResponse{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
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
		if _, err := conn.WriteTo(msg, net.UDPAddrFromAddrPort(gw)); err != nil {
			return pcp.MapResponse{}, err
		}
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		resp, err := readPCP(ctx, conn, gw, buf, c.nonce, port)
		if errors.Is(err, errResend) {
			continue
		}
		return resp, err
	}
}

// errResend: no answer came before the read deadline.
var errResend = errors.New("no answer yet")

// readPCP reads datagrams until the gateway at gw answers the request
// with nonce for the internal port (errResend at the read deadline).
// Datagrams from any other address, and answers to other requests, are
// skipped.
func readPCP(ctx context.Context, conn net.PacketConn, gw netip.AddrPort, buf []byte, nonce [12]byte, port uint16) (pcp.MapResponse, error) {
	for {
		n, from, err := conn.ReadFrom(buf)
		if ctx.Err() != nil {
			return pcp.MapResponse{}, context.Cause(ctx)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return pcp.MapResponse{}, errResend
		}
		if err != nil {
			return pcp.MapResponse{}, err
		}
		if ua, ok := from.(*net.UDPAddr); !ok || ua.AddrPort().Addr().Unmap() != gw.Addr() || ua.AddrPort().Port() != gw.Port() {
			continue // not the gateway
		}
		resp, err := pcp.ParseMapResponse(buf[:n])
		if err != nil {
			return pcp.MapResponse{}, err
		}
		if resp.Result != pcp.Success {
			return resp, fmt.Errorf("pcp: %s", pcp.ResultText(resp.Result))
		}
		if resp.Nonce != nonce || resp.InternalPort != port {
			continue // an answer to another request
		}
		return resp, nil
	}
}
