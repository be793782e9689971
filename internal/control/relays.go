package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/p2pconnet/connet/internal/admission"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/liveness"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
)

// maxHostports bounds what one relay may advertise.
const maxHostports = 16

// serveRelay registers a relay that runs apart, for as long as its
// connection lasts.
func (s *Server) serveRelay(ctx context.Context, conn muxconn.Conn, in Ingress) {
	log := s.cfg.Logger.With("relay-remote", logs.Addr(conn.RemoteAddr()))
	id, hello, err := s.authenticateRelay(ctx, conn)
	if err != nil {
		countRefusal(s.cfg.Metrics, "relay", err)
		log.Info("relay refused", "err", err)
		_ = conn.CloseWithError(codeAuth, err.Error())
		return
	}
	// A relay that moves is held to the same address rules there.
	idx, _ := match(s.cfg.RelayTokens, hello.GetToken())
	var watchers sync.WaitGroup
	defer watchers.Wait() // it ends with conn, which is closed below
	watchers.Go(func() {
		ingress.WatchMoves(ctx, conn, codeAuth, addrPolicy(in.AllowAddr, s.cfg.RelayTokens[idx].AllowAddr), nil)
	})
	cert := conn.TLS().PeerCertificates[0].Raw
	log.Info("relay joined", "relay", id, "hostports", hello.GetHostports(), "metadata", hello.GetMetadata())
	// A relay killed without its close reaching us goes silent: withdraw
	// it after the silence limit, not the idle timeout, so that clients
	// are not offered it (nor the status page shows it) all that time.
	liveness.CloseWhenStale(conn, codeStale, &watchers)
	remove := s.offerRelay(id, cert, RelayStatus{
		Hostports: hello.GetHostports(), Remote: conn.RemoteAddr().String(),
		Metadata: hello.GetMetadata(), Version: hello.GetBuildVersion(),
	})
	defer remove()
	select {
	case <-conn.Context().Done():
	case <-ctx.Done():
		_ = conn.CloseWithError(codeOK, "control server stopping")
	}
	log.Info("relay left", "relay", id, logs.ErrKey("reason", logs.Closed(context.Cause(conn.Context()), "relay")))
	_ = conn.CloseWithError(codeOK, "")
}

// authenticateRelay admits a relay on its hello: its token, its address
// and the hostports it advertises.
func (s *Server) authenticateRelay(ctx context.Context, conn muxconn.Conn) (identity.ID, *pb.RelayHello, error) {
	var hello pb.RelayHello
	req, err := admission.Receive(ctx, conn, s.cfg.QUIC.HandshakeIdleTimeout, "hello", &hello, wire.MaxHello)
	if err != nil {
		return identity.ID{}, nil, err
	}
	id := req.Peer
	reason, err := s.checkRelayHello(&hello, conn.RemoteAddr())
	if err != nil {
		return id, nil, err
	}
	if reason != nil {
		req.Refuse(&pb.RelayHelloReply{Error: wire.ToPB(reason)})
		return id, nil, fmt.Errorf("%w: %w", errAuth, reason)
	}
	if s.cfg.Grants == nil {
		return id, nil, errors.New("no grant key to hand out")
	}
	if _, err := req.Admit(&pb.RelayHelloReply{GrantKey: s.cfg.Grants.PublicKey()}); err != nil {
		return id, nil, err
	}
	return id, &hello, nil
}

// checkRelayHello checks a relay's token, its address (remote) and its
// hostports; a relay refused is told reason. err is a remote address that
// is no IP address.
func (s *Server) checkRelayHello(hello *pb.RelayHello, remote net.Addr) (reason *wire.Error, err error) {
	idx, ok := match(s.cfg.RelayTokens, hello.GetToken())
	if !ok {
		return wire.Errorf(pb.ErrorCode_ERROR_CODE_AUTH_FAILED, "unknown relay token"), nil
	}
	observed, err := observedAddr(remote)
	if err != nil {
		return nil, err
	}
	if allow := s.cfg.RelayTokens[idx].AllowAddr; allow != nil && !allow(observed.Addr()) {
		return wire.Errorf(pb.ErrorCode_ERROR_CODE_ADDR_FORBIDDEN, "address %s not allowed for this relay token", observed.Addr()), nil
	}
	if n := len(hello.GetHostports()); n == 0 || n > maxHostports {
		return wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "%d hostports (want 1 to %d)", n, maxHostports), nil
	}
	return nil, nil
}

// countRefusal counts an authentication that ended in a refusal (an
// answer with an error code), by its code; other failures (a handshake
// that timed out, a connection lost) are not refusals.
func countRefusal(m *metrics.Control, peer string, err error) {
	var werr *wire.Error
	if !errors.As(err, &werr) {
		return
	}
	reason := metrics.ReasonRequest
	switch werr.Code {
	case pb.ErrorCode_ERROR_CODE_AUTH_FAILED:
		reason = metrics.ReasonToken
	case pb.ErrorCode_ERROR_CODE_ADDR_FORBIDDEN:
		reason = metrics.ReasonAddress
	case pb.ErrorCode_ERROR_CODE_LIMIT:
		reason = metrics.ReasonLimit
	}
	m.Refused(peer, reason)
}
