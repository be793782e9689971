package control

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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

func (s *Server) authenticateRelay(ctx context.Context, conn muxconn.Conn) (identity.ID, *pb.RelayHello, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QUIC.HandshakeIdleTimeout)
	defer cancel()
	id, err := identity.PeerID(conn.TLS())
	if err != nil {
		return id, nil, err
	}
	stream, err := conn.AcceptStream(ctx)
	if err != nil {
		return id, nil, fmt.Errorf("waiting for hello: %w", err)
	}
	deadline, _ := ctx.Deadline()
	_ = stream.SetDeadline(deadline)
	// Read before the relay is authenticated: a small cap.
	var hello pb.RelayHello
	if err := wire.Read(stream, &hello, wire.MaxHello); err != nil {
		return id, nil, err
	}
	refuse := func(e *wire.Error) (identity.ID, *pb.RelayHello, error) {
		_ = wire.Write(stream, &pb.RelayHelloReply{Error: wire.ToPB(e)})
		_ = stream.CloseWrite()
		select {
		case <-conn.Context().Done():
		case <-time.After(refuseLinger):
		}
		return id, nil, fmt.Errorf("%w: %w", errAuth, e)
	}
	idx, ok := match(s.cfg.RelayTokens, hello.GetToken())
	if !ok {
		return refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_AUTH_FAILED, "unknown relay token"))
	}
	observed, err := observedAddr(conn.RemoteAddr())
	if err != nil {
		return id, nil, err
	}
	if allow := s.cfg.RelayTokens[idx].AllowAddr; allow != nil && !allow(observed.Addr()) {
		return refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_ADDR_FORBIDDEN, "address %s not allowed for this relay token", observed.Addr()))
	}
	if n := len(hello.GetHostports()); n == 0 || n > maxHostports {
		return refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "%d hostports (want 1 to %d)", n, maxHostports))
	}
	if s.cfg.Grants == nil {
		return id, nil, errors.New("no grant key to hand out")
	}
	if err := wire.Write(stream, &pb.RelayHelloReply{GrantKey: s.cfg.Grants.PublicKey()}); err != nil {
		return id, nil, err
	}
	return id, &hello, nil
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
