package controlclient

import (
	"log/slog"
	"net/netip"

	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// wireCandidates encodes the addresses the client announces, the mapped
// ones first. One the server would refuse (wire.CheckAddrPort) is left
// out and logged: the server ends the session of a client that announces
// it, and the client would reconnect into the same refusal again and
// again.
func wireCandidates(mapped, locals []netip.AddrPort, log *slog.Logger) []*pb.AddrPort {
	out := make([]*pb.AddrPort, 0, len(mapped)+len(locals))
	for _, list := range [][]netip.AddrPort{mapped, locals} {
		for _, ap := range list {
			if err := wire.CheckAddrPort(ap); err != nil {
				log.Warn("candidate address not announced", "addr", ap, "err", err)
				continue
			}
			out = append(out, wire.FromAddrPort(ap))
		}
	}
	return out
}
