package forward

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/tunnel"
)

// wsHandler serves a ws/wss source: each WebSocket session carries one
// tunnelled connection, its bytes as binary messages.
type wsHandler struct {
	s        *Source
	ctx      context.Context // ends with Serve; bounds every session
	dial     TunnelFunc
	origins  originPolicy
	sessions *sessionGroup
}

func (s *Source) newWSHandler(ctx context.Context, dial TunnelFunc, sessions *sessionGroup) *wsHandler {
	return &wsHandler{s: s, ctx: ctx, dial: dial, origins: newOriginPolicy(s.settings.AllowedOrigins), sessions: sessions}
}

func (h *wsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.s.log
	// With a path in the URL, only that path is the WebSocket endpoint.
	if p := h.s.settings.URL.Path; p != "" && p != "/" && r.URL.Path != p {
		http.NotFound(w, r)
		return
	}
	if !headerHasToken(r.Header, "Upgrade", "websocket") {
		http.Error(w, "connet: this is a WebSocket source; connect with a WebSocket client", http.StatusBadRequest)
		return
	}
	if !h.origins.allows(r) {
		log.Warn("source refused WebSocket from another origin", "client", r.RemoteAddr, "origin", r.Header.Get("Origin"), "host", r.Host)
		http.Error(w, fmt.Sprintf("connet: origin %s is not allowed (see allowed-origins)", r.Header.Get("Origin")), http.StatusForbidden)
		return
	}
	if !h.sessions.start() {
		http.Error(w, "connet: source is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer h.sessions.done()

	// Open the tunnel before upgrading, so that a client learns of a
	// missing destination from an HTTP status rather than a closed socket.
	var origin = originOfString(r.RemoteAddr)
	remote, err := h.dial(h.ctx, origin, nil)
	if err != nil {
		log.Warn("source WebSocket refused: no tunnel", "client", r.RemoteAddr, dialReason(err), logs.Err(err))
		answerDialError(w, err)
		return
	}
	// Origins were checked above, with connet's own rules.
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		// Accept has answered the client already.
		log.Warn("source WebSocket handshake failed", "client", r.RemoteAddr, "err", err)
		_ = remote.Close()
		return
	}
	conn := websocket.NetConn(h.ctx, c, websocket.MessageBinary)
	tunnel.Splice(wsSession{Conn: conn, ws: c}, tunnel.TCP(remote))
}

// maxMessage bounds the binary messages a source sends. The tunnel copies
// in chunks of up to 64 KiB, but some WebSocket clients refuse messages
// above 32 KiB by default (coder/websocket's own read limit is 32 KiB), so
// writes are split to fit them all.
const maxMessage = 32 << 10

// wsSession is a WebSocket session as the tunnel splices it: its writes
// become messages of at most maxMessage bytes. WebSocket has no
// half-close, so the end of the tunnel's data closes the session
// normally (1000); a failed tunnel ends it without a close frame, which a
// client sees as an abnormal closure (1006), WebSocket's reset: a cut
// transfer never passes for a complete one.
type wsSession struct {
	net.Conn
	ws *websocket.Conn
}

func (c wsSession) CloseWrite() error { return c.Conn.Close() }
func (c wsSession) Reset()            { _ = c.ws.CloseNow() }

func (c wsSession) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), maxMessage)
		m, err := c.Conn.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// headerHasToken reports whether one of the comma-separated values of
// header name is token, case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// sessionGroup counts the running WebSocket sessions of a source so that
// Serve can wait for them; once closed it admits no new ones.
type sessionGroup struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (g *sessionGroup) start() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *sessionGroup) done() { g.wg.Done() }

// closeAndWait refuses new sessions and waits for the running ones.
func (g *sessionGroup) closeAndWait() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}
