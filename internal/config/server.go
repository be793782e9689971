package config

// Server defaults from the spec.
const (
	DefaultClientsAddr = ":19190"
	DefaultRelaysAddr  = ":19189"
	DefaultRelayAddr   = ":19191"
)

// ServerSettings is the validated [server] section: a control server and a
// relay server running in one process.
type ServerSettings struct {
	// Tokens are the accepted client tokens.
	Tokens []string
	// TokenRestrictions is either empty or parallel to Tokens.
	TokenRestrictions []TokenRestriction
	// StatusAddr is where to serve status over HTTP; empty means disabled.
	StatusAddr string
	// StoreDir is where to persist state. Empty means: create a fresh
	// temporary directory (under $TMPDIR); state is then lost on restart.
	StoreDir string
	// Ingress lists the listeners for clients; there is at least one.
	Ingress []Ingress
	// RelayIngress lists the relay listeners; there is at least one.
	RelayIngress []RelayIngress
}

// ServerSettings validates the [server] section, reading the tokens file and
// the TLS certificates. env supplies the store-dir fallbacks
// (CONNET_STATE_DIR, STATE_DIRECTORY); it is usually os.Getenv and may be nil.
func (c *Config) ServerSettings(env func(string) string) (ServerSettings, error) {
	r := newResolver(c, env)
	s := r.server()
	if err := r.err(); err != nil {
		return ServerSettings{}, err
	}
	return s, nil
}

func (r *resolver) server() ServerSettings {
	sc := r.cfg.Server
	p := keyPath{"server"}
	var s ServerSettings

	s.Tokens = r.tokenList(p.key("tokens"), p.key("tokens-file"), sc.Tokens, sc.TokensFile)
	if len(s.Tokens) == 0 && sc.TokensFile == "" {
		r.failf(p.key("tokens"), "at least one client token is required: set tokens or tokens-file")
	}
	s.TokenRestrictions = r.tokenRestrictions(p.key("token-restriction"), sc.TokenRestrictions, len(s.Tokens))

	s.StatusAddr = r.listenAddr(p.key("status-addr"), sc.StatusAddr, "")
	s.StoreDir = storeDir(sc.StoreDir, r.env)

	s.Ingress = r.ingresses(p.key("ingress"), sc.Ingress, DefaultClientsAddr)
	s.RelayIngress = r.relayIngresses(p.key("relay-ingress"), sc.RelayIngress, DefaultRelayAddr)
	return s
}
