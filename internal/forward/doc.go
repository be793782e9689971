// Package forward connects connet's tunnels to the outside world as the
// endpoint URLs say. A source listens for local clients (tcp, tls, http,
// https, ws, wss) and opens one tunnelled connection per client connection
// (or, for http, per upstream connection of its reverse proxy). A
// destination takes the tunnelled connections and reaches its service
// (tcp, tls, http, https) or serves files (file). It knows nothing of peers
// or paths: a source gets a TunnelFunc, a destination a Tunnel.
//
// What a client reaching a local source may be is a web page, so sources
// that speak HTTP answer only to their own host names (hosts.go) and
// ws/wss sources to pages of allowed origins (origins.go); what an error
// answer or a file listing shows is no more than the client needs.
package forward
