package relay

import (
	"net"
	"path/filepath"
	"strconv"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/store"
	"github.com/quic-go/quic-go"
)

// Open is New with the relay's identity and stateless reset key kept in
// storeDir, so that clients' pins and connections survive its restart.
func Open(storeDir string, cfg Config) (*Server, error) {
	id, err := identity.LoadOrCreate(filepath.Join(storeDir, "relay.pem"), "connet-relay")
	if err != nil {
		return nil, err
	}
	key, err := store.LoadOrCreateKey(filepath.Join(storeDir, "relay-stateless-reset.key"))
	if err != nil {
		return nil, err
	}
	resetKey := quic.StatelessResetKey(key)
	cfg.Identity, cfg.StatelessResetKey = id, &resetKey
	return New(cfg)
}

// Hostports lists what clients dial, given the hostports of each ingress
// and the addresses the ingresses bound: a hostport with port 0 (an
// ingress on a port chosen at bind time) gets the bound port.
func Hostports(perIngress [][]string, bound []net.Addr) []string {
	var out []string
	for i, hps := range perIngress {
		for _, hp := range hps {
			if host, port, err := net.SplitHostPort(hp); err == nil && port == "0" && i < len(bound) {
				if ua, ok := bound[i].(*net.UDPAddr); ok {
					hp = net.JoinHostPort(host, strconv.Itoa(ua.Port))
				}
			}
			out = append(out, hp)
		}
	}
	return out
}
