package config

// The types in this file mirror the TOML file layout one to one. They hold
// raw values exactly as written (strings, string arrays, integers) so that
// files can be decoded strictly and merged before anything is interpreted;
// defaults and parsing happen later, in the *Settings methods.
//
// Struct tags:
//   - toml: the key name in the file. It also drives strict decoding, merging
//     and error key paths, so a field without it is invisible to the package.
//   - supersedes: names a sibling key that is an alternative way to give the
//     same value (token vs token-file). When a later file or flag sets this
//     key, the sibling inherited from earlier layers is dropped, so a --token
//     flag beats a token-file from the config file.

// Config is the whole connet configuration file. The zero value is an empty
// configuration; every section is optional and only the section matching the
// command being run is validated.
type Config struct {
	// LogLevel is one of fine, debug, info, warn, error (default info).
	LogLevel string `toml:"log-level"`
	// LogFormat is one of text, json (default text).
	LogFormat string `toml:"log-format"`

	Client  ClientConfig  `toml:"client"`
	Server  ServerConfig  `toml:"server"`
	Control ControlConfig `toml:"control"`
	Relay   RelayConfig   `toml:"relay"`

	// origins maps a rendered key path to the label of the file or flag that
	// last set it. It is filled by Merge.
	origins map[string]string
}

// ClientConfig is the [client] table.
type ClientConfig struct {
	TokenFile string `toml:"token-file" supersedes:"token"`
	Token     string `toml:"token" supersedes:"token-file"`
	Metadata  string `toml:"metadata"`

	ServerAddr    string `toml:"server-addr"`
	ServerCAsFile string `toml:"server-cas-file"`
	ServerName    string `toml:"server-name"`

	DirectAddr                  string `toml:"direct-addr"`
	DirectStatelessResetKey     string `toml:"direct-stateless-reset-key" supersedes:"direct-stateless-reset-key-file"`
	DirectStatelessResetKeyFile string `toml:"direct-stateless-reset-key-file" supersedes:"direct-stateless-reset-key"`

	StatusAddr           string `toml:"status-addr"`
	NatPMP               string `toml:"nat-pmp"`
	HandshakeIdleTimeout string `toml:"handshake-idle-timeout"`

	RelayEncryptions []string `toml:"relay-encryptions"`

	// MaxPendingStreams is our addition: how many streams one peer may
	// have waiting for an answer at the client's destinations.
	MaxPendingStreams int `toml:"max-pending-streams"`

	Destinations map[string]DestinationConfig `toml:"destinations"`
	Sources      map[string]SourceConfig      `toml:"sources"`

	// Transports, ServerTCPAddr and QUICRetry are our addition to the spec
	// (see transports.go).
	Transports    []string `toml:"transports"`
	ServerTCPAddr string   `toml:"server-tcp-addr"`
	QUICRetry     string   `toml:"quic-retry"`

	// BirthdayPunch is our addition to the spec (see punch.go).
	BirthdayPunch string `toml:"birthday-punch"`
}

// DestinationConfig is a [client.destinations.NAME] table: a service this
// client exposes to peers.
type DestinationConfig struct {
	Route             string   `toml:"route"`
	RelayEncryptions  []string `toml:"relay-encryptions"`
	ProxyProtoVersion string   `toml:"proxy-proto-version"`
	DialTimeout       string   `toml:"dial-timeout"`
	URL               string   `toml:"url"`
	CAsFile           string   `toml:"cas-file"`
	CertFile          string   `toml:"cert-file"`
	KeyFile           string   `toml:"key-file"`
	// ServeDotfiles (file destinations) serves names starting with '.',
	// which are hidden by default.
	ServeDotfiles bool `toml:"serve-dotfiles"`
}

// SourceConfig is a [client.sources.NAME] table: a local listener whose
// connections are forwarded to the peers exposing destination NAME.
type SourceConfig struct {
	Route            string   `toml:"route"`
	RelayEncryptions []string `toml:"relay-encryptions"`
	DialTimeout      string   `toml:"dial-timeout"`
	URL              string   `toml:"url"`
	CAsFile          string   `toml:"cas-file"`
	CertFile         string   `toml:"cert-file"`
	KeyFile          string   `toml:"key-file"`
	LBPolicy         string   `toml:"lb-policy"`
	LBRetry          string   `toml:"lb-retry"`
	// LBRetryMax is a peer count (lb-retry = "count") or milliseconds
	// (lb-retry = "timed"); 0 means "use the default".
	LBRetryMax int `toml:"lb-retry-max"`
	// AllowedOrigins lists the browser origins (besides the source's own)
	// a ws/wss source accepts, e.g. "https://app.example.com", or "*".
	AllowedOrigins []string `toml:"allowed-origins"`
	// AllowedHosts lists the host names (besides localhost, IP addresses
	// and the URL's own host) an http/https/ws/wss source answers to, e.g.
	// "app.example.com" or "app.example.com:8080", or "*".
	AllowedHosts []string `toml:"allowed-hosts"`
}

// ServerConfig is the [server] table: control and relay server in one.
type ServerConfig struct {
	TokensFile string   `toml:"tokens-file" supersedes:"tokens"`
	Tokens     []string `toml:"tokens" supersedes:"tokens-file"`

	StatusAddr string `toml:"status-addr"`
	StoreDir   string `toml:"store-dir"`

	Ingress           []IngressConfig          `toml:"ingress"`
	TokenRestrictions []TokenRestrictionConfig `toml:"token-restriction"`
	RelayIngress      []RelayIngressConfig     `toml:"relay-ingress"`
}

// ControlConfig is the [control] table: a standalone control server.
type ControlConfig struct {
	ClientsTokensFile string   `toml:"clients-tokens-file" supersedes:"clients-tokens"`
	ClientsTokens     []string `toml:"clients-tokens" supersedes:"clients-tokens-file"`
	RelaysTokensFile  string   `toml:"relays-tokens-file" supersedes:"relays-tokens"`
	RelaysTokens      []string `toml:"relays-tokens" supersedes:"relays-tokens-file"`

	StatusAddr string `toml:"status-addr"`
	StoreDir   string `toml:"store-dir"`

	ClientsIngress           []IngressConfig          `toml:"clients-ingress"`
	ClientsTokenRestrictions []TokenRestrictionConfig `toml:"clients-token-restriction"`
	RelaysIngress            []IngressConfig          `toml:"relays-ingress"`
	RelaysTokenRestrictions  []CIDRRestrictionConfig  `toml:"relays-token-restriction"`
}

// RelayConfig is the [relay] table: a standalone relay server.
type RelayConfig struct {
	TokenFile string `toml:"token-file" supersedes:"token"`
	Token     string `toml:"token" supersedes:"token-file"`
	Metadata  string `toml:"metadata"`

	ControlAddr    string `toml:"control-addr"`
	ControlCAsFile string `toml:"control-cas-file"`
	ControlName    string `toml:"control-name"`

	HandshakeTimeout string `toml:"handshake-timeout" supersedes:"handshake-idle-timeout"`
	// HandshakeIdleTimeout is another name of handshake-timeout, the one
	// the original connet (and our [client]) uses; setting both in one
	// layer is an error.
	HandshakeIdleTimeout string `toml:"handshake-idle-timeout" supersedes:"handshake-timeout"`

	StatusAddr string `toml:"status-addr"`
	StoreDir   string `toml:"store-dir"`

	Ingress []RelayIngressConfig `toml:"ingress"`
}

// IngressConfig is one QUIC listener that presents a TLS certificate:
// [[server.ingress]], [[control.clients-ingress]], [[control.relays-ingress]].
type IngressConfig struct {
	Addr       string   `toml:"addr"`
	CertFile   string   `toml:"cert-file"`
	KeyFile    string   `toml:"key-file"`
	AllowCIDRs []string `toml:"allow-cidrs"`
	DenyCIDRs  []string `toml:"deny-cidrs"`
	// Transports and TCPAddr are our addition to the spec (see
	// transports.go).
	Transports []string `toml:"transports"`
	TCPAddr    string   `toml:"tcp-addr"`
}

// RelayIngressConfig is one relay listener together with the host[:port]s
// that are advertised to clients for reaching it: [[server.relay-ingress]],
// [[relay.ingress]].
type RelayIngressConfig struct {
	Addr       string   `toml:"addr"`
	Hostports  []string `toml:"hostports"`
	AllowCIDRs []string `toml:"allow-cidrs"`
	DenyCIDRs  []string `toml:"deny-cidrs"`
	// MaxClientStreams and MaxPendingStreams are our addition to the spec:
	// per-client quotas of relayed connections, and of new ones waiting to
	// be paired; 0 means the default.
	MaxClientStreams  int `toml:"max-client-streams"`
	MaxPendingStreams int `toml:"max-pending-streams"`
	// Transports and TCPAddr are our addition to the spec (see
	// transports.go).
	Transports []string `toml:"transports"`
	TCPAddr    string   `toml:"tcp-addr"`
}

// TokenRestrictionConfig restricts what the client token at the same
// position may do: [[server.token-restriction]],
// [[control.clients-token-restriction]].
type TokenRestrictionConfig struct {
	AllowCIDRs  []string `toml:"allow-cidrs"`
	DenyCIDRs   []string `toml:"deny-cidrs"`
	NameMatches string   `toml:"name-matches"`
	RoleMatches string   `toml:"role-matches"`
}

// CIDRRestrictionConfig restricts where the relay token at the same
// position may connect from: [[control.relays-token-restriction]]. Relays
// have no names or roles, so only the network lists apply.
type CIDRRestrictionConfig struct {
	AllowCIDRs []string `toml:"allow-cidrs"`
	DenyCIDRs  []string `toml:"deny-cidrs"`
}
