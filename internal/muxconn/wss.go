package muxconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/p2pconnet/connet/internal/network"
)

// alpnHTTP is what WebSocket clients offer in the TLS handshake.
const alpnHTTP = "http/1.1"

// wsServer serves the WebSocket upgrade on the TLS connections that
// negotiated http/1.1, and hands each upgraded one, multiplexed, to its
// listener.
type wsServer struct {
	l     *Listener
	srv   *http.Server
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// wsMaxHeaderBytes bounds an upgrade request's header: a client's is a
// few hundred bytes, a proxy adds a few lines, and every unfinished
// handshake may hold this much (net/http's default is 1 MiB).
const wsMaxHeaderBytes = 16 << 10

func newWSServer(l *Listener) *wsServer {
	w := &wsServer{l: l, conns: make(chan net.Conn), done: make(chan struct{})}
	// A connection here is still in its handshake: it has the handshake
	// timeout to send its request and take the answer. The upgrade
	// takes the connection out of the server (hijacks it), which lifts
	// these deadlines from the WebSocket.
	timeout := l.cfg.HandshakeTimeout
	w.srv = &http.Server{
		Handler:           http.HandlerFunc(w.upgrade),
		ReadHeaderTimeout: timeout,
		ReadTimeout:       timeout,
		WriteTimeout:      timeout,
		IdleTimeout:       timeout,
		MaxHeaderBytes:    wsMaxHeaderBytes,
		// The upgrade finds the connection's share of the Listener's
		// limits here (see upgrade).
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, rawConnKey{}, c)
		},
		// The TLS handshake is done before a connection gets here.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	// One request per connection: a client upgrades with its first, and
	// anything else is answered and the connection closed, so no plain
	// HTTP client can keep one open.
	w.srv.SetKeepAlivesEnabled(false)
	return w
}

// serve runs the HTTP server until close.
func (w *wsServer) serve() { _ = w.srv.Serve(w) }

func (w *wsServer) close() {
	w.once.Do(func() { close(w.done) })
	_ = w.srv.Close()
}

// add gives the HTTP server a connection whose TLS handshake is done.
func (w *wsServer) add(c *tls.Conn) {
	select {
	case w.conns <- c:
	case <-w.done:
		_ = c.Close()
	}
}

// Accept, Close and Addr make wsServer the HTTP server's listener.
func (w *wsServer) Accept() (net.Conn, error) {
	select {
	case c := <-w.conns:
		return c, nil
	case <-w.done:
		return nil, net.ErrClosed
	}
}

func (w *wsServer) Close() error   { w.once.Do(func() { close(w.done) }); return nil }
func (w *wsServer) Addr() net.Addr { return w.l.Addr() }

// rawConnKey is where a request's context holds its connection.
type rawConnKey struct{}

// upgrade accepts a WebSocket on any path and runs the multiplexer over
// it. The client's certificate came with the TLS handshake, as over TCP.
func (w *wsServer) upgrade(rw http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		http.Error(rw, "TLS required", http.StatusBadRequest)
		return
	}
	ws, err := websocket.Accept(rw, r, nil)
	if err != nil {
		return
	}
	// The WebSocket outlives this handler (it is hijacked): its own
	// context, ended by closing the multiplexer over it.
	nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	raw, _ := r.Context().Value(rawConnKey{}).(net.Conn)
	c, err := serverMux(nc, *r.TLS, WSS, w.l.cfg.MaxIncomingStreams, func() { handshakeDone(raw) })
	if err != nil {
		return
	}
	w.l.deliver(c)
}

// WSSDialer dials one server address with a WebSocket over HTTPS, through
// the proxy that HTTPS_PROXY (and NO_PROXY) name, if any.
type WSSDialer struct {
	Addr string
	// Timeout bounds the dial (the proxy's answer, the TLS handshake and
	// the upgrade).
	Timeout time.Duration
	// Proxy picks the proxy for the request; nil means
	// http.ProxyFromEnvironment.
	Proxy func(*http.Request) (*url.URL, error)
	// Network dials (the server, or the proxy); nil means the operating
	// system's.
	Network network.Network
}

func (d WSSDialer) Transport() Transport { return WSS }

// Dial connects; tlsConf is the same as for QUIC and TCP (pins or roots,
// client certificate), offering http/1.1 instead of connet's ALPN.
func (d WSSDialer) Dial(ctx context.Context, tlsConf *tls.Config) (Conn, error) {
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	tlsConf = tlsConf.Clone()
	tlsConf.NextProtos = []string{alpnHTTP}
	// A transport per dial: the WebSocket takes its one connection over.
	proxy := d.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	tr := &http.Transport{
		Proxy:             proxy,
		DialContext:       network.Or(d.Network).DialContext,
		TLSClientConfig:   tlsConf,
		ForceAttemptHTTP2: false,
	}
	defer tr.CloseIdleConnections()
	u := url.URL{Scheme: "wss", Host: d.Addr, Path: "/"}
	ws, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		return nil, fmt.Errorf("websocket %s: %w", d.Addr, err)
	}
	var st tls.ConnectionState
	if resp != nil && resp.TLS != nil {
		st = *resp.TLS
	}
	nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	return clientMux(&wsAddrs{Conn: nc, remote: d.Addr}, st, WSS)
}

// wsAddrs names the server by the address dialed: the client's WebSocket
// does not know the TCP connection under it (a proxy's, perhaps).
type wsAddrs struct {
	net.Conn
	remote string
}

func (w *wsAddrs) RemoteAddr() net.Addr { return wsAddr(w.remote) }

type wsAddr string

func (a wsAddr) Network() string { return "wss" }
func (a wsAddr) String() string  { return string(a) }

// Proxied tells whether the environment (HTTPS_PROXY, NO_PROXY) sends a
// WebSocket to addr through a proxy.
func Proxied(addr string) bool {
	req := &http.Request{URL: &url.URL{Scheme: "https", Host: addr}}
	u, err := http.ProxyFromEnvironment(req)
	return err == nil && u != nil
}
