package direct

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/wire"
	"github.com/quic-go/quic-go"
)

// Punching through a symmetric NAT ("birthday" punching).
//
// A NAT that maps per destination ("hard") gives the flow towards a peer a
// port nobody can know beforehand, so dialing the peer's candidates fails
// when the other NAT filters by address and port. If the other side's NAT
// maps independently of the destination ("easy"), its mapping is known (the
// address the control server observed), and both sides search for a pair
// that works:
//
//   - the hard side opens punchSockets fresh UDP sockets and sends a probe
//     from each to the easy side's mapping: its NAT opens punchSockets
//     mappings, at ports that are random (nothing better can be assumed);
//   - the easy side sends up to punchSprayMax probes from its main socket to
//     random ports of the hard side's public address, each of which opens
//     its own NAT's filter for that port.
//
// A probe of the easy side that hits one of the hard side's open mappings
// arrives at the fresh socket behind it, and both NATs now let packets of
// that pair through (the easy side's filter was opened by that very probe).
// With 256 mappings among the 64512 ports of 1024-65535, 2048 probes find
// one with a probability of about 1 - (1 - 256/64512)^2048, over 99.9%. The
// hard side then runs QUIC on the socket that received the probe and dials
// the easy side's mapping; the easy side's main socket (whose mapping the
// hard side targets, which is why it sends the probes) accepts it like any
// peer connection. A probe of the hard side that arrives at the easy side
// once its filter is open is answered, which finds the pair as well.
//
// Bounds: each side sends punchRate probes a second at most; the hard side
// resends from each socket every punchResend during punchWindow (so at
// most punchSockets*punchWindow/punchResend probes), the easy side
// sends at most punchSprayMax and answers at most maxProbeReplies. An attempt
// lasts punchWindow; after a failure the next comes punchCooldown later,
// or at once if the peer reappears with a new session (a new secret). A
// client runs at most maxPunches attempts at once, whatever its number of
// peers. Two hard sides never try: they could not find each other. Over
// time, the probes towards one address are bounded by the probe budget
// (budget.go), which a peer coming back with a new identity or secret
// does not renew.
//
// Who is hard and who is easy is the control server's call (see package
// observation), and it gives peers no address to probe of a client that
// reaches it over TCP.
const (
	punchSockets    = 256
	punchSprayMax   = 2048
	punchRate       = 250
	punchWindow     = 15 * time.Second
	punchResend     = 5 * time.Second
	punchCooldown   = 2 * time.Minute
	punchPortMin    = 1024
	maxProbeReplies = 64
	// punchDelay lets the plain dial go first: when the easy side is not
	// behind a filtering NAT at all, the hard side's dial from its main
	// socket gets through within a round trip, and no probe is needed.
	punchDelay = 500 * time.Millisecond
	// maxPunches bounds the attempts one client runs at once, whatever
	// its number of peers: at most maxPunches*punchSockets sockets and
	// maxPunches*punchRate probes a second. An attempt over the bound is
	// skipped and counts as tried, so the retry after the cool-down stays
	// in step with the peer's.
	maxPunches = 8
)

// punchRole is the part this client plays in punching through to a peer.
type punchRole string

const (
	roleNone punchRole = ""
	roleHard punchRole = "hard"
	roleEasy punchRole = "easy"
)

// punchRole tells which side of a birthday punch this client takes with
// the peer, if any: one side must map per destination, the other not, and
// both must have told the other where they are and their secret.
func (n *Node) punchRole(st peer.State) punchRole {
	if n.NAT == nil || len(n.PunchSecret) != wire.PunchSecretLen ||
		len(st.Info.PunchSecret) != wire.PunchSecretLen || !st.Info.Observed.IsValid() {
		return roleNone
	}
	self, other := n.NAT(), st.Info.NAT
	switch {
	case self == peer.NATPerDestination && other == peer.NATIndependent && n.ListenPacket != nil:
		return roleHard
	case self == peer.NATIndependent && other == peer.NATPerDestination:
		return roleEasy
	}
	return roleNone
}

// punchLoop runs birthday punches to p while one applies and no direct
// path exists, one attempt per punchCooldown, until ctx ends.
func (n *Node) punchLoop(ctx context.Context, p *peer.Peer) {
	var last time.Time
	var lastKey string
	for {
		st, changed := p.State()
		role := n.punchRole(st)
		var cooled *time.Timer
		if role != roleNone && st.Announced && !st.HasDirect() && n.AllowDirect(st) {
			// A new role or a new peer session starts at once: the other
			// side sees the same change at about the same time.
			key := string(role) + string(st.Info.PunchSecret)
			if key != lastKey || time.Since(last) >= punchCooldown {
				last, lastKey = time.Now(), key
				n.punch(ctx, p, st.Info, role)
				continue
			}
			cooled = time.NewTimer(punchCooldown - time.Since(last))
		}
		if !n.waitPunch(ctx, changed, cooled) {
			return
		}
	}
}

// waitPunch waits for the peer's state to change or the cool-down timer
// (nil: none) to fire; false once ctx ended.
func (n *Node) waitPunch(ctx context.Context, changed <-chan struct{}, cooled *time.Timer) bool {
	var fired <-chan time.Time
	if cooled != nil {
		defer cooled.Stop()
		fired = cooled.C
	}
	select {
	case <-changed:
	case <-fired:
	case <-ctx.Done():
		return false
	}
	return true
}

// punch runs one attempt and logs how it went.
func (n *Node) punch(ctx context.Context, p *peer.Peer, info peer.Info, role punchRole) {
	delay := time.NewTimer(punchDelay)
	select {
	case <-delay.C:
	case <-ctx.Done():
		delay.Stop()
		return
	}
	if st, _ := p.State(); st.HasDirect() {
		return
	}
	log := n.Logger.With("peer", p.ID, "role", string(role))
	if !n.punches.acquire(maxPunches) {
		log.Debug("symmetric NAT punch skipped: too many at once", "max", maxPunches)
		return
	}
	defer n.punches.release()
	log.Debug("punching through a symmetric NAT", "peer_addr", info.Observed)
	start := time.Now()
	var sent int
	var err error
	if role == roleHard {
		sent, err = n.punchHard(ctx, p, info)
	} else {
		sent, err = n.punchEasy(ctx, p, info)
	}
	if ctx.Err() != nil {
		return
	}
	st, _ := p.State()
	if err != nil || !st.HasDirect() {
		// Debug, not info: it repeats every punchCooldown for a pair that
		// never makes it, and the relay carries on regardless.
		log.Debug("symmetric NAT punch found no path", "probes", sent, "after_ms", logs.Millis(time.Since(start)), logs.Err(err))
		return
	}
	log.Info("symmetric NAT punch made a direct path", "probes", sent, "after_ms", logs.Millis(time.Since(start)))
	if role == roleHard && n.SetupTime != nil {
		n.SetupTime(time.Since(start))
	}
}

// slots counts things in progress against a bound.
type slots struct {
	mu sync.Mutex
	n  int
}

// acquire takes a slot if fewer than limit are taken.
func (s *slots) acquire(limit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n >= limit {
		return false
	}
	s.n++
	return true
}

func (s *slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n--
}

// errNoSockets reports a hard side that could not open a single socket.
var errNoSockets = errors.New("no socket for probes")

// punchHard plays the hard side: probes from fresh sockets, and QUIC over
// the first one that hears from the peer. It returns the probes sent.
func (n *Node) punchHard(ctx context.Context, p *peer.Peer, info peer.Info) (int, error) {
	wctx, cancel := context.WithTimeout(ctx, punchWindow)
	defer cancel()
	h := &hardPunch{
		n: n, p: p, info: info,
		target: net.UDPAddrFromAddrPort(info.Observed),
		probe:  makeProbe(n.Identity.ID, p.ID, info.PunchSecret),
		won:    make(chan net.PacketConn, 1),
	}
	defer h.stop(cancel)
	// A direct path that comes up another way (the peer's dial, say) ends
	// the attempt.
	h.readers.Go(func() {
		if waitDirect(wctx, p) {
			cancel()
		}
	})
	c, err := h.probeRounds(wctx)
	if c == nil {
		return h.sent, err
	}
	// Keep the socket that heard the peer and dial from it.
	h.taken = c
	return h.sent, n.dialPunched(ctx, c, p, info)
}

// hardPunch is one attempt of the hard side: the sockets it opened, their
// readers listening for the peer's probes, and the probes it sent.
type hardPunch struct {
	n      *Node
	p      *peer.Peer
	info   peer.Info
	target *net.UDPAddr
	probe  []byte
	// won takes the first socket that heard the peer.
	won   chan net.PacketConn
	socks []net.PacketConn
	// taken is the socket dialed from, which stays open.
	taken   net.PacketConn
	readers sync.WaitGroup
	sent    int
	// openErr is why no more sockets could be opened.
	openErr error
}

// probeRounds sends probes from up to punchSockets sockets, opened in the
// first round, again every punchResend until the window ends. It returns
// the socket that heard the peer, or nil when the window ended first.
func (h *hardPunch) probeRounds(wctx context.Context) (net.PacketConn, error) {
	tick := time.NewTicker(time.Second / punchRate)
	defer tick.Stop()
	for round := range punchWindow / punchResend {
		roundStart := time.Now()
		for i := range punchSockets {
			select {
			case <-tick.C:
			case c := <-h.won:
				return c, nil
			case <-wctx.Done():
				return nil, nil
			}
			if round == 0 && h.openErr == nil {
				h.openSocket(wctx)
			}
			h.sendProbe(i)
		}
		if len(h.socks) == 0 {
			return nil, fmt.Errorf("%w: %w", errNoSockets, h.openErr)
		}
		// Resend after punchResend; after the last round, wait out the
		// window for the peer's probes.
		if c, ended := h.awaitPeer(wctx, punchResend-time.Since(roundStart)); c != nil || ended {
			return c, nil
		}
	}
	select {
	case c := <-h.won:
		return c, nil
	case <-wctx.Done():
		return nil, nil
	}
}

// openSocket opens one more socket for probes and starts reading it.
func (h *hardPunch) openSocket(ctx context.Context) {
	c, err := h.n.ListenPacket(ctx)
	if err != nil {
		// Out of descriptors, say: go on with what is open.
		h.openErr = err
		h.n.Logger.Debug("cannot open more sockets for probes", "open", len(h.socks), logs.Err(err))
		return
	}
	h.socks = append(h.socks, c)
	h.readers.Go(func() { h.readProbes(c) })
}

// sendProbe sends a probe from socket i, if it is open and the target's
// probe budget allows one.
func (h *hardPunch) sendProbe(i int) {
	if i >= len(h.socks) || !h.n.probes.take(h.info.Observed.Addr(), time.Now()) {
		return
	}
	if _, err := h.socks[i].WriteTo(h.probe, h.target); err == nil {
		h.sent++
	}
}

// readProbes reads c until it closes or hears a valid probe from the
// peer, and then offers c as the winner.
func (h *hardPunch) readProbes(c net.PacketConn) {
	buf := make([]byte, 2*probeLen)
	for {
		nr, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok || !sameAddr(ua.AddrPort(), h.info.Observed) || !probeValid(buf[:nr], h.p.ID, h.n.Identity.ID, h.n.PunchSecret) {
			continue
		}
		select {
		case h.won <- c:
		default:
		}
		return
	}
}

// awaitPeer waits up to d for a socket to hear the peer; ended tells that
// the window closed first.
func (h *hardPunch) awaitPeer(wctx context.Context, d time.Duration) (c net.PacketConn, ended bool) {
	wait := time.NewTimer(d)
	defer wait.Stop()
	select {
	case <-wait.C:
		return nil, false
	case c := <-h.won:
		return c, false
	case <-wctx.Done():
		return nil, true
	}
}

// stop ends the attempt: it closes every socket but the one taken and
// waits for the readers.
func (h *hardPunch) stop(cancel context.CancelFunc) {
	cancel()
	for _, c := range h.socks {
		if c != h.taken {
			_ = c.Close()
		}
	}
	h.readers.Wait()
}

// dialPunched runs QUIC on the socket c whose probe pair got through and
// dials the peer's mapping from it; the connection becomes a direct path.
// The socket and its transport live as long as the connection.
func (n *Node) dialPunched(ctx context.Context, c net.PacketConn, p *peer.Peer, info peer.Info) error {
	tr := &quic.Transport{Conn: c}
	closeAll := func() {
		_ = tr.Close()
		_ = c.Close()
	}
	tlsConf := n.Identity.PinnedClientConfig(info.Cert, wire.ALPNPeer)
	conn, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(info.Observed), tlsConf, n.Config)
	if err != nil {
		closeAll()
		return fmt.Errorf("dial through the punched pair from %s: %w", c.LocalAddr(), err)
	}
	n.wg.Go(func() {
		<-conn.Context().Done()
		closeAll()
	})
	n.adopt(conn, netpath.DirectOutgoing)
	return nil
}

// easyAttempt is an easy side's punch in progress: probes from the peer
// are answered while it lasts.
type easyAttempt struct {
	observed netip.Addr
	reply    []byte
	replies  int
}

// punchEasy plays the easy side: probes from the main socket to random
// ports of the peer's public address. The peer dials once one gets
// through; the attempt ends then, or when punchWindow is over. It returns
// the probes sent.
func (n *Node) punchEasy(ctx context.Context, p *peer.Peer, info peer.Info) (sent int, err error) {
	wctx, cancel := context.WithTimeout(ctx, punchWindow)
	defer cancel()
	probe := makeProbe(n.Identity.ID, p.ID, info.PunchSecret)
	a := &easyAttempt{observed: info.Observed.Addr(), reply: probe}
	n.probeMu.Lock()
	if n.attempts == nil {
		n.attempts = map[identity.ID]*easyAttempt{}
	}
	n.attempts[p.ID] = a
	n.probeMu.Unlock()
	defer func() {
		n.probeMu.Lock()
		if n.attempts[p.ID] == a {
			delete(n.attempts, p.ID)
		}
		sent += a.replies
		n.probeMu.Unlock()
	}()

	tick := time.NewTicker(time.Second / punchRate)
	defer tick.Stop()
	tried := make(map[uint16]bool, punchSprayMax)
	for {
		st, changed := p.State()
		if st.HasDirect() {
			return sent, nil
		}
		var next <-chan time.Time
		if len(tried) < punchSprayMax {
			next = tick.C
		}
		select {
		case <-next:
		case <-changed:
			continue
		case <-wctx.Done():
			return sent, nil
		}
		if !n.probes.take(a.observed, time.Now()) {
			continue
		}
		port := randomPort(tried)
		dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(a.observed, port))
		if _, err := n.Transport.WriteTo(probe, dst); err != nil {
			return sent, fmt.Errorf("send probe: %w", err)
		}
		sent++
	}
}

// randomPort picks a port of punchPortMin-65535 not yet in tried, and
// records it.
func randomPort(tried map[uint16]bool) uint16 {
	for {
		p := uint16(punchPortMin + rand.IntN(65536-punchPortMin))
		if !tried[p] {
			tried[p] = true
			return p
		}
	}
}

// ServeProbes reads the non-QUIC packets of the main socket until ctx
// ends and answers the punch probes of peers with an easy-side attempt in
// progress. quic-go has one queue of non-QUIC packets per transport, so
// this is their one reader: others get theirs through n.NonQUIC.
func (n *Node) ServeProbes(ctx context.Context) error {
	buf := make([]byte, 2*probeLen)
	for {
		nr, from, err := n.Transport.ReadNonQUICPacket(ctx, buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read probes: %w", err)
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		if !IsProbe(buf[:nr]) {
			if n.NonQUIC != nil {
				n.NonQUIC(buf[:nr], ua.AddrPort())
			}
			continue
		}
		if reply := n.replyTo(buf[:nr], ua.AddrPort()); reply != nil {
			_, _ = n.Transport.WriteTo(reply, ua)
		}
	}
}

// replyTo returns the answer to probe b from `from`, or nil: only a valid
// probe of a peer we are punching to, from that peer's public address,
// gets one, and at most maxProbeReplies per attempt.
func (n *Node) replyTo(b []byte, from netip.AddrPort) []byte {
	sender, ok := probeSender(b)
	if !ok {
		return nil
	}
	n.probeMu.Lock()
	defer n.probeMu.Unlock()
	a := n.attempts[sender]
	if a == nil || a.replies >= maxProbeReplies || from.Addr().Unmap() != a.observed ||
		!probeValid(b, sender, n.Identity.ID, n.PunchSecret) {
		return nil
	}
	a.replies++
	return a.reply
}

// waitDirect waits until p has a direct path (true) or ctx ends (false).
func waitDirect(ctx context.Context, p *peer.Peer) bool {
	for {
		st, changed := p.State()
		if st.HasDirect() {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

// sameAddr tells whether a and b are the same address and port, an
// IPv4-mapped IPv6 address being its IPv4 one.
func sameAddr(a, b netip.AddrPort) bool {
	return a.Addr().Unmap() == b.Addr().Unmap() && a.Port() == b.Port()
}
