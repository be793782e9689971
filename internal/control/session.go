package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/p2pconnet/connet/internal/admission"
	"github.com/p2pconnet/connet/internal/e2ee"
	"github.com/p2pconnet/connet/internal/grant"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/ingress"
	"github.com/p2pconnet/connet/internal/liveness"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/metrics"
	"github.com/p2pconnet/connet/internal/muxconn"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/p2pconnet/connet/internal/wire/pb"
	"github.com/quic-go/quic-go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Limits on what one client may announce; beyond the counts its connection
// ends, while an endpoint beyond the per-endpoint limits (name length,
// relay encryptions) is refused alone. The shared ones are in package wire,
// since clients check them too and they size the messages built from them.
const (
	maxEndpoints  = wire.MaxEndpoints
	maxLocalAddrs = 64
	maxRelays     = 64
	maxNameLen    = wire.MaxNameLen
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
func (s *Server) serve(ctx context.Context, conn muxconn.Conn, in Ingress) {
	log := s.cfg.Logger.With("remote", logs.Addr(conn.RemoteAddr()))
	// watchers are the goroutines serving this connection; they end with
	// conn, which every path below closes.
	var watchers sync.WaitGroup
	defer watchers.Wait()
	c, stream, err := s.authenticate(ctx, conn)
	if err != nil {
		countRefusal(s.cfg.Metrics, "client", err)
		log.Info("client refused", "err", err)
		code := codeProtocol
		if errors.Is(err, errAuth) {
			code = codeAuth
		}
		_ = conn.CloseWithError(code, err.Error())
		return
	}
	// Over TCP, the connection counted among unfinished handshakes until
	// now (see muxconn.Authenticated).
	muxconn.Authenticated(conn)
	log = log.With("client", c.id, "metadata", c.metadata)
	log.Info("client connected", "observed", c.observed)
	liveness.CloseWhenStale(conn, codeStale, &watchers)
	// A client that moves (QUIC migration) is held to the same address
	// rules at its new address, and its peers learn where it is now.
	allowed := addrPolicy(in.AllowAddr, s.cfg.Tokens[c.token].AllowAddr)
	watchCtx := ctx // ctx is redeclared below
	watchers.Go(func() {
		ingress.WatchMoves(watchCtx, conn, codeAuth, allowed, func(a netip.AddrPort) {
			log.Info("client moved", "observed", a)
			s.registry.moved(c, a)
		})
	})
	s.registry.add(c)
	defer s.registry.remove(c)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchers.Go(func() { cancel(s.sendStates(ctx, stream, c)) })
	watchers.Go(func() { cancel(s.readStates(stream, c, &observationChecker{r: s.registry, client: c.id})) })
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
	log.Info("client disconnected", logs.ErrKey("reason", logs.Closed(err, "client")))
	_ = conn.CloseWithError(codeOK, "")
}

// errAuth marks the refusals that are the client's fault (token, address).
var errAuth = errors.New("access denied")

// errLimit marks a hello refused for its size.
var errLimit = errors.New("hello over the limits")

// authenticate admits a client on its hello: its token, its address and
// the size of its metadata.
func (s *Server) authenticate(ctx context.Context, conn muxconn.Conn) (*client, muxconn.Stream, error) {
	var hello pb.Hello
	req, err := admission.Receive(ctx, conn, s.cfg.QUIC.HandshakeIdleTimeout, "hello", &hello, wire.MaxHello)
	if errors.Is(err, wire.ErrTooLarge) {
		return nil, nil, refuseClient(req, &refusal{errLimit, wire.Errorf(pb.ErrorCode_ERROR_CODE_LIMIT,
			"hello too large (at most %d bytes, metadata at most %d): %v", wire.MaxHello, wire.MaxMetadata, err)})
	}
	if err != nil {
		return nil, nil, err
	}
	observed, err := observedAddr(conn.RemoteAddr())
	if err != nil {
		return nil, nil, err
	}
	idx, r := s.checkHello(&hello, observed)
	if r != nil {
		return nil, nil, refuseClient(req, r)
	}
	stream, err := req.Admit(&pb.HelloReply{Observed: wire.FromAddrPort(observed), ClientId: req.Peer[:]})
	if err != nil {
		return nil, nil, err
	}
	c := &client{
		id:       req.Peer,
		cert:     conn.TLS().PeerCertificates[0].Raw,
		metadata: hello.GetMetadata(),
		observed: observed,
		overUDP:  conn.Transport() == muxconn.QUIC,
		token:    idx,
		closeConn: func(reason string) {
			_ = conn.CloseWithError(codeReplaced, reason)
		},
	}
	return c, stream, nil
}

// refusal is why a client is refused: the reason it is told, and kind,
// which marks the error for the close code (errAuth or errLimit).
type refusal struct {
	kind   error
	reason *wire.Error
}

// checkHello finds the token of a client's hello and checks the client's
// address and metadata against it; nil admits the client.
func (s *Server) checkHello(hello *pb.Hello, observed netip.AddrPort) (idx int, r *refusal) {
	idx, ok := match(s.cfg.Tokens, hello.GetToken())
	if !ok {
		return 0, &refusal{errAuth, wire.Errorf(pb.ErrorCode_ERROR_CODE_AUTH_FAILED, "unknown token")}
	}
	if allow := s.cfg.Tokens[idx].AllowAddr; allow != nil && !allow(observed.Addr()) {
		return 0, &refusal{errAuth, wire.Errorf(pb.ErrorCode_ERROR_CODE_ADDR_FORBIDDEN, "address %s not allowed for this token", observed.Addr())}
	}
	// Metadata goes to every peer sharing a name with the client, in the
	// state each of them reads under a cap.
	if n := len(hello.GetMetadata()); n > wire.MaxMetadata {
		return 0, &refusal{errLimit, wire.Errorf(pb.ErrorCode_ERROR_CODE_LIMIT, "metadata of %d bytes (at most %d)", n, wire.MaxMetadata)}
	}
	return idx, nil
}

// refuseClient tells a client why it is refused, in the reply it waits
// for, and returns the refusal as an error.
func refuseClient(req *admission.Request, r *refusal) error {
	req.Refuse(&pb.HelloReply{Error: wire.ToPB(r.reason)})
	return fmt.Errorf("%w: %w", r.kind, r.reason)
}

// observedAddr is where the client's connection comes from: over TCP, the
// address of its TCP connection, which says nothing of its UDP mapping and
// may be a proxy's. The client is told it, and the token's address rules
// apply to it, but peers never get it to dial or probe (see nat.go).
func observedAddr(a net.Addr) (netip.AddrPort, error) {
	ap, ok := ingress.AddrPort(a)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("unexpected remote address %v", a)
	}
	return ap, nil
}

// sendStates sends the client what it should know whenever it changes.
// Changes that come in faster than the client reads coalesce.
// A fresh grant goes out at least every grant.Refresh.
func (s *Server) sendStates(ctx context.Context, stream muxconn.Stream, c *client) error {
	refresh := time.NewTicker(grant.Refresh)
	defer refresh.Stop()
	for {
		_, changed := c.dirty.Get()
		st, err := fitState(s.registry.stateFor(c), s.cfg.maxState, s.cfg.Logger.With("client", c.id))
		if err != nil {
			return err
		}
		if err := wire.Write(stream, st); err != nil {
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
func (s *Server) readStates(stream muxconn.Stream, c *client, observations *observationChecker) error {
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
		punch, err := checkPunch(&msg, observations)
		if err != nil {
			return err
		}
		now := map[string]bool{}
		for _, r := range refused {
			key := wire.RoleName(r.GetRole()) + "/" + r.GetName()
			now[key] = true
			if !loggedRefusals[key] {
				s.cfg.Metrics.Refused("client", metrics.ReasonEndpoint)
				s.cfg.Logger.Info("endpoint refused", "client", c.id, "endpoint", r.GetName(), "role", wire.RoleName(r.GetRole()), "reason", r.GetError().GetMessage())
			}
		}
		loggedRefusals = now
		s.registry.update(c, locals, endpoints, refused, msg.GetRelays(), punch)
	}
}

// check validates a client state against the protocol and the client's
// token. Malformed input ends the connection; endpoints the token may not
// have are refused one by one and reported back.
func (s *Server) check(c *client, msg *pb.ClientState) ([]netip.AddrPort, []*pb.Endpoint, []*pb.EndpointStatus, error) {
	if len(msg.GetEndpoints()) > maxEndpoints || len(msg.GetLocalAddrs()) > maxLocalAddrs || len(msg.GetRelays()) > maxRelays {
		return nil, nil, nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_LIMIT, "too many endpoints or addresses")
	}
	locals, err := checkLocalAddrs(msg.GetLocalAddrs())
	if err != nil {
		return nil, nil, nil, err
	}
	endpoints, refused, err := checkEndpoints(s.cfg.Tokens[c.token], msg.GetEndpoints())
	if err != nil {
		return nil, nil, nil, err
	}
	return locals, endpoints, refused, nil
}

// checkLocalAddrs decodes the addresses a client has on its own networks.
func checkLocalAddrs(addrs []*pb.AddrPort) ([]netip.AddrPort, error) {
	var locals []netip.AddrPort
	for _, a := range addrs {
		ap, err := wire.ToAddrPort(a)
		if err != nil {
			return nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "local address: %v", err)
		}
		locals = append(locals, ap)
	}
	return locals, nil
}

// checkEndpoints sorts the endpoints a client announces into those it may
// have under tok and those refused; a malformed one (no name, an unknown
// role, announced twice) is an error.
func checkEndpoints(tok Token, announced []*pb.Endpoint) (endpoints []*pb.Endpoint, refused []*pb.EndpointStatus, err error) {
	seen := map[string]bool{}
	for _, e := range announced {
		name, role := e.GetName(), e.GetRole()
		if name == "" {
			return nil, nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "empty endpoint name")
		}
		if role != pb.Role_ROLE_DESTINATION && role != pb.Role_ROLE_SOURCE {
			return nil, nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "endpoint %q: unknown role %d", name, role)
		}
		key := wire.RoleName(role) + "/" + name
		if seen[key] {
			return nil, nil, wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "endpoint %s announced twice", key)
		}
		seen[key] = true
		if r := endpointRefusal(tok, e); r != nil {
			refused = append(refused, r)
			continue
		}
		// A copy of the known fields: unknown ones would travel into
		// the client's grant unchecked.
		endpoints = append(endpoints, &pb.Endpoint{Name: name, Role: role, Route: e.GetRoute(), RelayEncryptions: e.GetRelayEncryptions()})
	}
	return endpoints, refused, nil
}

// endpointRefusal is why an endpoint is refused alone, nil if it is not:
// it is over the per-endpoint limits, or tok does not allow it.
func endpointRefusal(tok Token, e *pb.Endpoint) *pb.EndpointStatus {
	name, role := e.GetName(), e.GetRole()
	if err := checkEndpoint(e); err != nil {
		// The name is echoed cut to the limit so the refusal stays small.
		return &pb.EndpointStatus{Name: truncate(name, maxNameLen), Role: role, Error: wire.ToPB(err)}
	}
	var reason string
	switch {
	case tok.NameMatches != nil && !tok.NameMatches.MatchString(name):
		reason = fmt.Sprintf("name %q does not match this token's name restriction", name)
	case tok.Role != "" && tok.Role != wire.RoleName(role):
		reason = fmt.Sprintf("this token may only be used for %s endpoints", tok.Role)
	default:
		return nil
	}
	return &pb.EndpointStatus{Name: name, Role: role,
		Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_ENDPOINT_FORBIDDEN, Message: reason}}
}

// checkPunch validates what a client sends for punching through NATs: a
// secret of PunchSecretLen bytes (or none), and where relays saw it, each
// signed by its relay.
func checkPunch(msg *pb.ClientState, observations *observationChecker) (punchInfo, error) {
	secret := msg.GetPunchSecret()
	if len(secret) != 0 && len(secret) != wire.PunchSecretLen {
		return punchInfo{}, wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "punch secret of %d bytes (want %d)", len(secret), wire.PunchSecretLen)
	}
	relayObserved, err := observations.check(msg.GetRelayObservations())
	if err != nil {
		return punchInfo{}, err
	}
	return punchInfo{secret: secret, relayObserved: relayObserved}, nil
}

// checkEndpoint applies the per-endpoint limits: a name of at most
// maxNameLen bytes, and relay encryptions among the known modes, each at
// most once.
func checkEndpoint(e *pb.Endpoint) *wire.Error {
	if n := len(e.GetName()); n > maxNameLen {
		return wire.Errorf(pb.ErrorCode_ERROR_CODE_LIMIT, "endpoint name of %d bytes (at most %d)", n, maxNameLen)
	}
	encs := e.GetRelayEncryptions()
	if len(encs) > wire.MaxRelayEncryptions {
		return wire.Errorf(pb.ErrorCode_ERROR_CODE_LIMIT, "%d relay encryptions (at most %d)", len(encs), wire.MaxRelayEncryptions)
	}
	for i, enc := range encs {
		if _, err := e2ee.ParseEncryption(enc); err != nil {
			return wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "%v", err)
		}
		if slices.Contains(encs[:i], enc) {
			return wire.Errorf(pb.ErrorCode_ERROR_CODE_BAD_REQUEST, "relay encryption %q listed twice", enc)
		}
	}
	return nil
}

// truncate cuts s to at most n bytes on a rune boundary, so the result is
// still valid UTF-8 as protobuf strings must be.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// fitState returns st if it fits max bytes on the wire, else a copy
// without the largest peers, as many as it takes, logging each. A client
// reads its state under a cap; a state over it would fail every read, and
// the client would reconnect only to fail again. The number of peers
// sharing a name is not bounded, so only the size check can rule that out.
// st itself is not changed.
func fitState(st *pb.ServerState, max int, log *slog.Logger) (*pb.ServerState, error) {
	size := proto.Size(st)
	if size <= max {
		return st, nil
	}
	type sized struct {
		p    *pb.Peer
		size int
	}
	peers := make([]sized, len(st.GetPeers()))
	for i, p := range st.GetPeers() {
		// The peer's whole contribution: field tag, length and body.
		peers[i] = sized{p, protowire.SizeTag(1) + protowire.SizeBytes(proto.Size(p))}
	}
	byWeight := slices.Clone(peers)
	slices.SortStableFunc(byWeight, func(a, b sized) int { return b.size - a.size })
	dropped := map[*pb.Peer]bool{}
	for _, p := range byWeight {
		if size <= max {
			break
		}
		dropped[p.p] = true
		size -= p.size
		log.Warn("peer left out of a client's state: the state would exceed the size a client reads",
			"peer", identityString(p.p.GetId()), "peer_bytes", p.size, "limit", max)
	}
	if size > max {
		return nil, fmt.Errorf("control: state of %d bytes without any peer exceeds the limit of %d", size, max)
	}
	out := &pb.ServerState{Refused: st.GetRefused(), Observed: st.GetObserved(), Relays: st.GetRelays(), Grant: st.GetGrant(), NatMapping: st.GetNatMapping()}
	for _, p := range peers {
		if !dropped[p.p] {
			out.Peers = append(out.Peers, p.p)
		}
	}
	return out, nil
}

// identityString names a peer id for a log line.
func identityString(b []byte) string {
	if id, err := identity.ParseID(b); err == nil {
		return id.String()
	}
	return fmt.Sprintf("%x", b)
}
