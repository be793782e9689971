package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/p2pconnet/connet/internal/grant"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/liveness"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
	"google.golang.org/protobuf/proto"
)

// Limits on what one client may announce; beyond them its connection ends.
const (
	maxEndpoints  = 4096
	maxLocalAddrs = 64
	maxRelays     = 64
	maxNameLen    = 256

	// refuseLinger is how long a refused client has to read why.
	refuseLinger = time.Second
)

// Connection close codes sent to clients.
const (
	codeOK quic.ApplicationErrorCode = iota
	codeAuth
	codeProtocol
	codeReplaced
	codeStale
)

// serve runs one client connection: authentication, then the exchange of
// states until either side leaves. Whatever the client sends, only this
// connection is affected.
func (s *Server) serve(ctx context.Context, conn *quic.Conn) {
	log := s.cfg.Logger.With("remote", conn.RemoteAddr())
	c, stream, err := s.authenticate(ctx, conn)
	if err != nil {
		log.Info("client refused", "err", err)
		code := codeProtocol
		if errors.Is(err, errAuth) {
			code = codeAuth
		}
		_ = conn.CloseWithError(code, err.Error())
		return
	}
	log = log.With("client", c.id, "metadata", c.metadata)
	log.Info("client connected", "observed", c.observed)
	liveness.CloseWhenStale(conn, codeStale)
	s.registry.add(c)
	defer s.registry.remove(c)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() { cancel(s.sendStates(ctx, stream, c)) }()
	go func() { cancel(s.readStates(stream, c)) }()
	select {
	case <-ctx.Done():
	case <-conn.Context().Done():
		cancel(context.Cause(conn.Context()))
	}
	err = context.Cause(ctx)
	var perr *wire.Error
	if errors.As(err, &perr) {
		log.Warn("client violated the protocol", "err", err)
		_ = conn.CloseWithError(codeProtocol, err.Error())
		return
	}
	log.Info("client disconnected", "reason", err)
	_ = conn.CloseWithError(codeOK, "")
}

// errAuth marks the refusals that are the client's fault (token, address).
var errAuth = errors.New("access denied")

func (s *Server) authenticate(ctx context.Context, conn *quic.Conn) (*client, *quic.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QUIC.HandshakeIdleTimeout)
	defer cancel()
	id, err := identity.PeerID(conn.ConnectionState().TLS)
	if err != nil {
		return nil, nil, err
	}
	stream, err := conn.AcceptStream(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("waiting for hello: %w", err)
	}
	deadline, _ := ctx.Deadline()
	_ = stream.SetDeadline(deadline)
	var hello pb.Hello
	if err := wire.Read(stream, &hello, wire.MaxControlMessage); err != nil {
		return nil, nil, err
	}
	observed, err := observedAddr(conn.RemoteAddr())
	if err != nil {
		return nil, nil, err
	}
	refuse := func(e *wire.Error) (*client, *quic.Stream, error) {
		_ = wire.Write(stream, &pb.HelloReply{Error: wire.ToPB(e)})
		_ = stream.Close()
		// Give the client a moment to read the reason before the
		// connection closes; it normally closes first.
		select {
		case <-conn.Context().Done():
		case <-time.After(refuseLinger):
		}
		return nil, nil, fmt.Errorf("%w: %w", errAuth, e)
	}
	idx, ok := match(s.cfg.Tokens, hello.GetToken())
	if !ok {
		return refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_AUTH_FAILED, "unknown token"))
	}
	if allow := s.cfg.Tokens[idx].AllowAddr; allow != nil && !allow(observed.Addr()) {
		return refuse(wire.Errorf(pb.ErrorCode_ERROR_CODE_ADDR_FORBIDDEN, "address %s not allowed for this token", observed.Addr()))
	}
	if err := wire.Write(stream, &pb.HelloReply{Observed: wire.FromAddrPort(observed), ClientId: id[:]}); err != nil {
		return nil, nil, err
	}
	_ = stream.SetDeadline(time.Time{})
	c := &client{
		id:       id,
		cert:     conn.ConnectionState().TLS.PeerCertificates[0].Raw,
		metadata: hello.GetMetadata(),
		observed: observed,
		token:    idx,
		closeConn: func(reason string) {
			_ = conn.CloseWithError(codeReplaced, reason)
		},
	}
	return c, stream, nil
}

func observedAddr(a net.Addr) (netip.AddrPort, error) {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("unexpected remote address %v", a)
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// sendStates sends the client what it should know whenever it changes.
// Changes that come in faster than the client reads coalesce.
// A fresh grant goes out at least every grant.Refresh.
func (s *Server) sendStates(ctx context.Context, stream *quic.Stream, c *client) error {
	refresh := time.NewTicker(grant.Refresh)
	defer refresh.Stop()
	for {
		_, changed := c.dirty.Get()
		if err := wire.Write(stream, s.registry.stateFor(c)); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-refresh.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// readStates applies each state the client sends.
func (s *Server) readStates(stream *quic.Stream, c *client) error {
	// loggedRefusals are the refusals already logged, so each is logged
	// once and not again with every state the client sends.
	loggedRefusals := map[string]bool{}
	for {
		var msg pb.ClientState
		if err := wire.Read(stream, &msg, wire.MaxControlMessage); err != nil {
			if errors.Is(err, wire.ErrTooLarge) || errors.Is(err, proto.Error) {
				return wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "%v", err)
			}
			return err
		}
		locals, endpoints, refused, err := s.check(c, &msg)
		if err != nil {
			return err
		}
		now := map[string]bool{}
		for _, r := range refused {
			key := wire.RoleName(r.GetRole()) + "/" + r.GetName()
			now[key] = true
			if !loggedRefusals[key] {
				s.cfg.Logger.Info("endpoint refused", "client", c.id, "endpoint", r.GetName(), "role", wire.RoleName(r.GetRole()), "reason", r.GetError().GetMessage())
			}
		}
		loggedRefusals = now
		s.registry.update(c, locals, endpoints, refused, msg.GetRelays())
	}
}

// check validates a client state against the protocol and the client's
// token. Malformed input ends the connection; endpoints the token may not
// have are refused one by one and reported back.
func (s *Server) check(c *client, msg *pb.ClientState) ([]netip.AddrPort, []*pb.Endpoint, []*pb.EndpointStatus, error) {
	if len(msg.GetEndpoints()) > maxEndpoints || len(msg.GetLocalAddrs()) > maxLocalAddrs || len(msg.GetRelays()) > maxRelays {
		return nil, nil, nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_LIMIT, "too many endpoints or addresses")
	}
	var locals []netip.AddrPort
	for _, a := range msg.GetLocalAddrs() {
		ap, err := wire.ToAddrPort(a)
		if err != nil {
			return nil, nil, nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "local address: %v", err)
		}
		locals = append(locals, ap)
	}
	tok := s.cfg.Tokens[c.token]
	seen := map[string]bool{}
	var endpoints []*pb.Endpoint
	var refused []*pb.EndpointStatus
	for _, e := range msg.GetEndpoints() {
		name, role := e.GetName(), e.GetRole()
		if name == "" || len(name) > maxNameLen {
			return nil, nil, nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "endpoint name of %d bytes", len(name))
		}
		if role != pb.Role_ROLE_DESTINATION && role != pb.Role_ROLE_SOURCE {
			return nil, nil, nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "endpoint %q: unknown role %d", name, role)
		}
		key := wire.RoleName(role) + "/" + name
		if seen[key] {
			return nil, nil, nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "endpoint %s announced twice", key)
		}
		seen[key] = true
		var reason string
		switch {
		case tok.NameMatches != nil && !tok.NameMatches.MatchString(name):
			reason = fmt.Sprintf("name %q does not match this token's name restriction", name)
		case tok.Role != "" && tok.Role != wire.RoleName(role):
			reason = fmt.Sprintf("this token may only be used for %s endpoints", tok.Role)
		}
		if reason != "" {
			refused = append(refused, &pb.EndpointStatus{Name: name, Role: role,
				Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_ENDPOINT_FORBIDDEN, Message: reason}})
			continue
		}
		endpoints = append(endpoints, e)
	}
	return locals, endpoints, refused, nil
}
