package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/forward"
	"github.com/p2pconnet/connet/internal/store"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type clientFlags struct {
	configs              []string
	token, tokenFile     string
	metadata             string
	serverAddr           string
	serverCAsFile        string
	serverName           string
	directAddr           string
	resetKeyFile         string
	statusAddr           string
	natPMP               string
	birthdayPunch        string
	handshakeIdleTimeout string
	relayEncryptions     []string
	dst, src             endpointFlags
	log                  logFlags
}

// endpointFlags describe the one destination or source the command line
// can add (more need a config file).
type endpointFlags struct {
	prefix                                 string
	name, url, route, dialTimeout          string
	relayEncryptions                       []string
	proxyProto, casFile, certFile, keyFile string
	lbPolicy, lbRetry                      string
	lbRetryMax                             int
	allowedOrigins, allowedHosts           []string
	serveDotfiles                          bool
}

func newRootCommand() *cobra.Command { return newClientCommand(runClient) }

// newClientCommand builds the root command around run, so tests can
// exercise the flags and config loading without connecting.
func newClientCommand(run func(context.Context, *pflag.FlagSet, *clientFlags) error) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "connet",
		Short: "Expose a service on one device to another, peer to peer, through NATs",
		Long: `connet runs a client: it connects to a control server and runs the
destinations (services this device exposes) and sources (local listeners
reaching remote destinations) given by --config files and flags.`,
		Args: unknownCommand,
		// cobra applies its default distance only where it suggests by
		// itself, not in SuggestionsFor, which unknownCommand calls.
		SuggestionsMinimumDistance: 2,
		SilenceUsage:               true,
		SilenceErrors:              true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), cmd.Flags(), &f)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&f.configs, "config", nil, "TOML config file; repeat to merge several in order")
	fs.StringVar(&f.token, "token", "", "token for the control server (else token-file, token, then $CONNET_TOKEN)")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the token for the control server")
	fs.StringVar(&f.metadata, "metadata", "", "text sent to the control server to help identify this client")
	fs.StringVar(&f.serverAddr, "server-addr", "", "control server host:port (default 127.0.0.1:19190)")
	fs.StringVar(&f.serverCAsFile, "server-cas-file", "", "PEM file of CAs to trust for the control server")
	fs.StringVar(&f.serverName, "server-name", "", "name in the control server's certificate (default: host of --server-addr)")
	fs.StringVar(&f.directAddr, "direct-addr", "", "UDP address for control and peer connections (default :19192)")
	fs.StringVar(&f.resetKeyFile, "direct-stateless-reset-key-file", "", "file holding the QUIC stateless reset key")
	fs.StringVar(&f.statusAddr, "status-addr", "", "serve status as JSON over HTTP at this address")
	fs.StringVar(&f.natPMP, "nat-pmp", "", "port mapping on the NAT gateway: system, dial, disabled, or nat-pmp, pcp, upnp for one protocol (default system)")
	fs.StringVar(&f.birthdayPunch, "birthday-punch", "", "punching through symmetric NATs with bursts of probes: enabled or disabled (default enabled)")
	fs.StringVar(&f.handshakeIdleTimeout, "handshake-idle-timeout", "", "QUIC handshake idle timeout (default 5s)")
	fs.StringSliceVar(&f.relayEncryptions, "relay-encryptions", nil, "relay encryptions: none, tls, dhxcp (default none)")
	f.dst.register(fs, "dst", "destination")
	f.src.register(fs, "src", "source")
	f.log.register(fs)
	aliases(fs, map[string]string{"dst-relay-encryption": "dst-relay-encryptions", "src-relay-encryption": "src-relay-encryptions"})

	cmd.AddCommand(newServerCommand(), newControlCommand(), newRelayCommand(), newCheckCommand(), newVersionCommand(), newStatusCommand())
	return cmd
}

// unknownCommand rejects arguments to the root command, which takes none:
// the first one is a subcommand cobra did not find, so suggest the nearest.
// (cobra suggests by itself only for a root command without Args.)
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
	}
	return fmt.Errorf("%s; run 'connet --help' for the commands", msg)
}

func (e *endpointFlags) register(fs *pflag.FlagSet, prefix, what string) {
	e.prefix = prefix
	fs.StringVar(&e.name, prefix+"-name", "", "name of the "+what)
	fs.StringVar(&e.url, prefix+"-url", "", "URL of the "+what)
	fs.StringVar(&e.route, prefix+"-route", "", "routes the "+what+" may use: any, direct or relay")
	fs.StringVar(&e.dialTimeout, prefix+"-dial-timeout", "", "dial timeout of the "+what+" (default 0: wait)")
	fs.StringSliceVar(&e.relayEncryptions, prefix+"-relay-encryptions", nil, "relay encryptions of the "+what)
	fs.StringVar(&e.casFile, prefix+"-cas-file", "", "CAs file of the "+what+" (TLS)")
	fs.StringVar(&e.certFile, prefix+"-cert-file", "", "certificate file of the "+what+" (TLS)")
	fs.StringVar(&e.keyFile, prefix+"-key-file", "", "key file of the "+what+" (TLS)")
	if prefix == "dst" {
		fs.StringVar(&e.proxyProto, prefix+"-proxy-proto-version", "", "PROXY protocol version to send: v1 or v2")
		fs.BoolVar(&e.serveDotfiles, prefix+"-serve-dotfiles", false, "serve names starting with '.' from a file:// destination (hidden by default)")
	} else {
		fs.StringVar(&e.lbPolicy, prefix+"-lb-policy", "", "load balancer policy")
		fs.StringVar(&e.lbRetry, prefix+"-lb-retry", "", "load balancer retry policy")
		fs.IntVar(&e.lbRetryMax, prefix+"-lb-retry-max", 0, "load balancer retry limit")
		fs.StringSliceVar(&e.allowedOrigins, prefix+"-allowed-origins", nil, "browser origins a ws/wss source accepts besides its own (e.g. https://app.example.com, or *)")
		fs.StringSliceVar(&e.allowedHosts, prefix+"-allowed-hosts", nil, "host names an http/https/ws/wss source answers to besides localhost, IP addresses and its URL's host (e.g. app.example.com, or *)")
	}
}

// apply overlays the endpoint flags on the config.
func (e *endpointFlags) apply(o overlay) error {
	given := false
	o.flags.VisitAll(func(fl *pflag.Flag) {
		if fl.Changed && strings.HasPrefix(fl.Name, e.prefix+"-") {
			given = true
		}
	})
	if !given {
		return nil
	}
	if e.name == "" {
		return fmt.Errorf("--%s-name is required with the other --%s-* flags", e.prefix, e.prefix)
	}
	// An endpoint needs a URL: from the flag, or from the config files when
	// the flags edit an endpoint they declare.
	if !o.flags.Changed(e.prefix+"-url") && !e.declared(o.cfg) {
		return fmt.Errorf("--%s-name %q needs --%s-url (or a [client.%s.%s] table with a url in a --config file)",
			e.prefix, e.name, e.prefix, e.table(), e.name)
	}
	set := func(flag string, fn func(d *config.DestinationConfig, s *config.SourceConfig)) {
		o.set(e.prefix+"-"+flag, func(c *config.Config) {
			var d config.DestinationConfig
			var s config.SourceConfig
			fn(&d, &s)
			if e.prefix == "dst" {
				c.Client.Destinations = map[string]config.DestinationConfig{e.name: d}
			} else {
				c.Client.Sources = map[string]config.SourceConfig{e.name: s}
			}
		})
	}
	set("url", func(d *config.DestinationConfig, s *config.SourceConfig) { d.URL, s.URL = e.url, e.url })
	set("route", func(d *config.DestinationConfig, s *config.SourceConfig) { d.Route, s.Route = e.route, e.route })
	set("dial-timeout", func(d *config.DestinationConfig, s *config.SourceConfig) {
		d.DialTimeout, s.DialTimeout = e.dialTimeout, e.dialTimeout
	})
	set("relay-encryptions", func(d *config.DestinationConfig, s *config.SourceConfig) {
		d.RelayEncryptions, s.RelayEncryptions = e.relayEncryptions, e.relayEncryptions
	})
	set("cas-file", func(d *config.DestinationConfig, s *config.SourceConfig) { d.CAsFile, s.CAsFile = e.casFile, e.casFile })
	set("cert-file", func(d *config.DestinationConfig, s *config.SourceConfig) {
		d.CertFile, s.CertFile = e.certFile, e.certFile
	})
	set("key-file", func(d *config.DestinationConfig, s *config.SourceConfig) { d.KeyFile, s.KeyFile = e.keyFile, e.keyFile })
	set("proxy-proto-version", func(d *config.DestinationConfig, _ *config.SourceConfig) { d.ProxyProtoVersion = e.proxyProto })
	set("lb-policy", func(_ *config.DestinationConfig, s *config.SourceConfig) { s.LBPolicy = e.lbPolicy })
	set("lb-retry", func(_ *config.DestinationConfig, s *config.SourceConfig) { s.LBRetry = e.lbRetry })
	set("lb-retry-max", func(_ *config.DestinationConfig, s *config.SourceConfig) { s.LBRetryMax = e.lbRetryMax })
	set("allowed-origins", func(_ *config.DestinationConfig, s *config.SourceConfig) { s.AllowedOrigins = e.allowedOrigins })
	set("allowed-hosts", func(_ *config.DestinationConfig, s *config.SourceConfig) { s.AllowedHosts = e.allowedHosts })
	set("serve-dotfiles", func(d *config.DestinationConfig, _ *config.SourceConfig) { d.ServeDotfiles = e.serveDotfiles })
	return nil
}

// table is the config table of this kind of endpoint.
func (e *endpointFlags) table() string {
	if e.prefix == "dst" {
		return "destinations"
	}
	return "sources"
}

// declared tells whether the config files declare this endpoint with a URL.
func (e *endpointFlags) declared(cfg *config.Config) bool {
	if e.prefix == "dst" {
		return cfg.Client.Destinations[e.name].URL != ""
	}
	return cfg.Client.Sources[e.name].URL != ""
}

// clientConfig loads the config files and overlays the flags.
func (f *clientFlags) load(fs *pflag.FlagSet) (*config.Config, error) {
	cfg, err := config.Load(f.configs...)
	if err != nil {
		return nil, err
	}
	o := overlay{flags: fs, cfg: cfg}
	o.set("token", func(c *config.Config) { c.Client.Token = f.token })
	o.set("token-file", func(c *config.Config) { c.Client.TokenFile = f.tokenFile })
	o.set("metadata", func(c *config.Config) { c.Client.Metadata = f.metadata })
	o.set("server-addr", func(c *config.Config) { c.Client.ServerAddr = f.serverAddr })
	o.set("server-cas-file", func(c *config.Config) { c.Client.ServerCAsFile = f.serverCAsFile })
	o.set("server-name", func(c *config.Config) { c.Client.ServerName = f.serverName })
	o.set("direct-addr", func(c *config.Config) { c.Client.DirectAddr = f.directAddr })
	o.set("direct-stateless-reset-key-file", func(c *config.Config) { c.Client.DirectStatelessResetKeyFile = f.resetKeyFile })
	o.set("status-addr", func(c *config.Config) { c.Client.StatusAddr = f.statusAddr })
	o.set("nat-pmp", func(c *config.Config) { c.Client.NatPMP = f.natPMP })
	o.set("birthday-punch", func(c *config.Config) { c.Client.BirthdayPunch = f.birthdayPunch })
	o.set("handshake-idle-timeout", func(c *config.Config) { c.Client.HandshakeIdleTimeout = f.handshakeIdleTimeout })
	o.set("relay-encryptions", func(c *config.Config) { c.Client.RelayEncryptions = f.relayEncryptions })
	f.log.apply(o)
	if err := f.dst.apply(o); err != nil {
		return nil, err
	}
	if err := f.src.apply(o); err != nil {
		return nil, err
	}
	return cfg, nil
}

func runClient(ctx context.Context, fs *pflag.FlagSet, f *clientFlags) error {
	cfg, err := f.load(fs)
	if err != nil {
		return err
	}
	logSettings, err := cfg.LogSettings()
	if err != nil {
		return err
	}
	log := newLogger(os.Stderr, logSettings)
	cs, err := cfg.ClientSettings(os.Getenv)
	if err != nil {
		return err
	}
	if len(cs.Destinations) == 0 && len(cs.Sources) == 0 {
		log.Warn("no destinations or sources configured; the client only connects")
	}

	// Bind the sources' listeners and load every endpoint's files first, so
	// a taken port or a bad certificate fails at once.
	sources := map[string]*forward.Source{}
	defer func() {
		for _, s := range sources {
			_ = s.Close()
		}
	}()
	for name, s := range cs.Sources {
		src, err := forward.NewSource(s, log.With("source", name))
		if err != nil {
			return fmt.Errorf("source %q: %w", name, err)
		}
		sources[name] = src
	}
	destinations := map[string]*forward.Destination{}
	for name, d := range cs.Destinations {
		dst, err := forward.NewDestination(d, log.With("destination", name))
		if err != nil {
			return fmt.Errorf("destination %q: %w", name, err)
		}
		destinations[name] = dst
	}

	opts := []connet.ClientOption{
		connet.ClientToken(cs.Token),
		connet.ClientMetadata(cs.Metadata),
		connet.ClientControlAddress(cs.ServerAddr),
		connet.ClientControlServerName(cs.ServerName),
		connet.ClientDirectAddress(cs.DirectAddr),
		connet.ClientHandshakeIdleTimeout(cs.HandshakeIdleTimeout),
		connet.ClientNatPMP(cs.NatPMP),
		connet.ClientBuildVersion(buildVersion()),
		connet.ClientRelayEncryptions(cs.RelayEncryptions...),
		connet.ClientLogger(log),
		connet.ClientTCPFallback(cs.Fallback.Addr),
		connet.ClientFallbackTransports(fallbacks(cs.Fallback)...),
		connet.ClientQUICRetry(cs.Fallback.QUICRetry),
		connet.ClientMaxPendingStreams(cs.MaxPendingStreams),
		connet.ClientBirthdayPunch(cs.BirthdayPunch == config.BirthdayPunchEnabled),
	}
	if cs.ServerCAs != nil {
		opts = append(opts, connet.ClientControlCAs(cs.ServerCAs))
	}
	if cs.StatusAddr != "" {
		opts = append(opts, connet.ClientStatusAddress(cs.StatusAddr))
	}
	if key := resetKey(cs, log); key != nil {
		opts = append(opts, connet.ClientDirectStatelessResetKey(*key))
	}

	log.Info("connecting to control server", "server", cs.ServerAddr, "version", buildVersion())
	// Start, not Connect: the sources answer their connections (refusing
	// them with the reason) while the control server is not reached yet,
	// and the status page lists them, instead of leaving both waiting.
	cl, err := connet.Start(ctx, opts...)
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()

	// On the way out, the endpoints stop serving before the client
	// closes: each resets the connections it carries and returns, so a
	// client stopped mid-transfer cuts them at both ends with resets, not
	// with clean ends that would pass a truncated stream off as complete.
	var serving sync.WaitGroup
	defer serving.Wait()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	for name, d := range cs.Destinations {
		dst, err := cl.Destination(ctx, connet.DestinationConfig{
			Name: name, Route: d.Route, RelayEncryptions: d.RelayEncryptions,
		})
		if err != nil {
			return err
		}
		log.Info("destination ready", "name", name, "url", d.URL.Redacted())
		serving.Go(func() { cancel(ignoreClosed(destinations[name].Serve(ctx, dst))) })
	}
	for name, s := range cs.Sources {
		src, err := cl.Source(ctx, connet.SourceConfig{
			Name: name, Route: s.Route, DialTimeout: s.DialTimeout, RelayEncryptions: s.RelayEncryptions,
			LBPolicy: s.LBPolicy, LBRetry: s.LBRetry, LBRetryMax: s.LBRetryMax,
		})
		if err != nil {
			return err
		}
		ep := sources[name]
		delete(sources, name)
		serving.Go(func() { cancel(ignoreClosed(ep.Serve(ctx, src.DialEarly))) })
	}

	select {
	case <-ctx.Done():
		if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	case <-cl.Done():
		return trustHint(cl.Err(), "server-cas-file", "server-name")
	}
}

func ignoreClosed(err error) error {
	if errors.Is(err, connet.ErrClosed) {
		return nil
	}
	return err
}

// resetKey returns the configured stateless reset key, else one kept in the
// cache directory (named after the direct address, so several clients on a
// host keep theirs apart), else nil for an ephemeral key, with a warning:
// peers then cannot be told of a restart and notice it only by timeout.
func resetKey(cs config.ClientSettings, log *slog.Logger) *[32]byte {
	if cs.StatelessResetKey != nil {
		return cs.StatelessResetKey
	}
	if cs.ResetKeyCacheDir == "" {
		log.Warn("no cache directory ($CONNET_CACHE_DIR, $CACHE_DIRECTORY, $XDG_CACHE_HOME or $HOME): using an ephemeral stateless reset key")
		return nil
	}
	key, err := store.LoadOrCreateKey(resetKeyFile(cs.ResetKeyCacheDir, cs.DirectAddr))
	if err != nil {
		log.Warn("cannot keep a stateless reset key, using an ephemeral one", "err", err)
		return nil
	}
	return &key
}

// resetKeyFile is where the generated key of the client at directAddr is
// kept: directly in the cache directory, which is connet's own already.
func resetKeyFile(cacheDir, directAddr string) string {
	name := "stateless-reset-" + strings.NewReplacer(":", "_", "/", "_", "[", "", "]", "").Replace(directAddr) + ".key"
	return filepath.Join(cacheDir, name)
}

// fallbacks lists the transports a client falls back to, in order.
func fallbacks(t config.ClientTransports) []connet.Transport {
	var out []connet.Transport
	if t.TCP {
		out = append(out, connet.TransportTCP)
	}
	if t.WSS {
		out = append(out, connet.TransportWSS)
	}
	return out
}
