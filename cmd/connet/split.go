package main

import (
	"context"
	"os"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/config"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// controlFlags are the [control] settings the command line can give; as for
// the server, the ingress flags edit the first ingress of each kind.
type controlFlags struct {
	configs              []string
	clientsTokens        []string
	clientsTokensFile    string
	relaysTokens         []string
	relaysTokensFile     string
	statusAddr, storeDir string
	clients, relays      ingressFlags
	log                  logFlags
}

// ingressFlags describe the first ingress of one kind: prefix is "clients"
// or "relays", and each flag is named prefix-key after the config key.
type ingressFlags struct {
	prefix                  string
	addr, certFile, keyFile string
	allowCIDRs, denyCIDRs   []string
}

func (i *ingressFlags) register(fs *pflag.FlagSet, prefix, who, defAddr string) {
	i.prefix = prefix
	fs.StringVar(&i.addr, prefix+"-addr", "", "UDP address of the (first) "+who+" ingress (default "+defAddr+")")
	fs.StringVar(&i.certFile, prefix+"-cert-file", "", "TLS certificate file of the (first) "+who+" ingress")
	fs.StringVar(&i.keyFile, prefix+"-key-file", "", "TLS key file of the (first) "+who+" ingress")
	fs.StringSliceVar(&i.allowCIDRs, prefix+"-allow-cidrs", nil, "networks (CIDR) the (first) "+who+" ingress accepts "+who+" from")
	fs.StringSliceVar(&i.denyCIDRs, prefix+"-deny-cidrs", nil, "networks (CIDR) the (first) "+who+" ingress refuses "+who+" from")
}

// apply overlays the flags on the ingress list that field selects.
func (i *ingressFlags) apply(o overlay, field func(*config.Config) *[]config.IngressConfig) {
	set := func(flag string, edit func(*config.IngressConfig)) {
		o.set(i.prefix+"-"+flag, func(c *config.Config) { *field(c) = editFirst(*field(o.cfg), edit) })
	}
	set("addr", func(in *config.IngressConfig) { in.Addr = i.addr })
	set("cert-file", func(in *config.IngressConfig) { in.CertFile = i.certFile })
	set("key-file", func(in *config.IngressConfig) { in.KeyFile = i.keyFile })
	set("allow-cidrs", func(in *config.IngressConfig) { in.AllowCIDRs = i.allowCIDRs })
	set("deny-cidrs", func(in *config.IngressConfig) { in.DenyCIDRs = i.denyCIDRs })
}

func newControlCommand() *cobra.Command { return controlCommand(runControl) }

// controlCommand builds the command around run, as serverCommand does.
func controlCommand(run func(context.Context, *config.Config) error) *cobra.Command {
	var f controlFlags
	cmd := configCommand("control", "Run a control server on its own; relays join it with relay tokens", &f.configs, f.load, run)
	fs := cmd.Flags()
	fs.StringSliceVar(&f.clientsTokens, "clients-tokens", nil, "client tokens")
	fs.StringVar(&f.clientsTokensFile, "clients-tokens-file", "", "file of client tokens, one per line")
	fs.StringSliceVar(&f.relaysTokens, "relays-tokens", nil, "relay tokens")
	fs.StringVar(&f.relaysTokensFile, "relays-tokens-file", "", "file of relay tokens, one per line")
	fs.StringVar(&f.statusAddr, "status-addr", "", "serve status as JSON over HTTP at this address")
	fs.StringVar(&f.storeDir, "store-dir", "", "directory for state kept across restarts")
	f.clients.register(fs, "clients", "clients", config.DefaultClientsAddr)
	f.relays.register(fs, "relays", "relays", config.DefaultRelaysAddr)
	f.log.register(fs)
	return cmd
}

func (f *controlFlags) load(fs *pflag.FlagSet) (*config.Config, error) {
	cfg, err := config.Load(f.configs...)
	if err != nil {
		return nil, err
	}
	o := overlay{flags: fs, cfg: cfg}
	o.set("clients-tokens", func(c *config.Config) { c.Control.ClientsTokens = f.clientsTokens })
	o.set("clients-tokens-file", func(c *config.Config) { c.Control.ClientsTokensFile = f.clientsTokensFile })
	o.set("relays-tokens", func(c *config.Config) { c.Control.RelaysTokens = f.relaysTokens })
	o.set("relays-tokens-file", func(c *config.Config) { c.Control.RelaysTokensFile = f.relaysTokensFile })
	o.set("status-addr", func(c *config.Config) { c.Control.StatusAddr = f.statusAddr })
	o.set("store-dir", func(c *config.Config) { c.Control.StoreDir = f.storeDir })
	f.clients.apply(o, func(c *config.Config) *[]config.IngressConfig { return &c.Control.ClientsIngress })
	f.relays.apply(o, func(c *config.Config) *[]config.IngressConfig { return &c.Control.RelaysIngress })
	f.log.apply(o)
	return cfg, nil
}

// relayFlags are the [relay] settings the command line can give.
type relayFlags struct {
	configs               []string
	token, tokenFile      string
	metadata              string
	controlAddr           string
	controlCAsFile        string
	controlName           string
	handshakeTimeout      string
	statusAddr, storeDir  string
	addr                  string
	hostports             []string
	allowCIDRs, denyCIDRs []string
	log                   logFlags
}

func newRelayCommand() *cobra.Command { return relayCommand(runRelay) }

// relayCommand builds the command around run, as serverCommand does.
func relayCommand(run func(context.Context, *config.Config) error) *cobra.Command {
	var f relayFlags
	cmd := configCommand("relay", "Run a relay server on its own, joined to a control server", &f.configs, f.load, run)
	fs := cmd.Flags()
	fs.StringVar(&f.token, "token", "", "relay token for the control server")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the relay token")
	fs.StringVar(&f.metadata, "metadata", "", "text sent to the control server to help identify this relay")
	fs.StringVar(&f.controlAddr, "control-addr", "", "control server host:port for relays (default "+config.DefaultControlAddr+")")
	fs.StringVar(&f.controlCAsFile, "control-cas-file", "", "PEM file of CAs to trust for the control server")
	fs.StringVar(&f.controlName, "control-name", "", "name in the control server's certificate (default: host of --control-addr)")
	fs.StringVar(&f.handshakeTimeout, "handshake-timeout", "", "QUIC handshake idle timeout (default 5s)")
	fs.StringVar(&f.statusAddr, "status-addr", "", "serve status as JSON over HTTP at this address")
	fs.StringVar(&f.storeDir, "store-dir", "", "directory for state kept across restarts")
	fs.StringVar(&f.addr, "addr", "", "UDP address of the (first) ingress for clients (default "+config.DefaultRelayAddr+")")
	fs.StringSliceVar(&f.hostports, "hostports", nil, "host[:port]s advertised to clients for the (first) ingress")
	fs.StringSliceVar(&f.allowCIDRs, "allow-cidrs", nil, "networks (CIDR) the (first) ingress accepts clients from")
	fs.StringSliceVar(&f.denyCIDRs, "deny-cidrs", nil, "networks (CIDR) the (first) ingress refuses clients from")
	f.log.register(fs)
	aliases(fs, map[string]string{"handshake-idle-timeout": "handshake-timeout"})
	return cmd
}

func (f *relayFlags) load(fs *pflag.FlagSet) (*config.Config, error) {
	cfg, err := config.Load(f.configs...)
	if err != nil {
		return nil, err
	}
	o := overlay{flags: fs, cfg: cfg}
	o.set("token", func(c *config.Config) { c.Relay.Token = f.token })
	o.set("token-file", func(c *config.Config) { c.Relay.TokenFile = f.tokenFile })
	o.set("metadata", func(c *config.Config) { c.Relay.Metadata = f.metadata })
	o.set("control-addr", func(c *config.Config) { c.Relay.ControlAddr = f.controlAddr })
	o.set("control-cas-file", func(c *config.Config) { c.Relay.ControlCAsFile = f.controlCAsFile })
	o.set("control-name", func(c *config.Config) { c.Relay.ControlName = f.controlName })
	o.set("handshake-timeout", func(c *config.Config) { c.Relay.HandshakeTimeout = f.handshakeTimeout })
	o.set("status-addr", func(c *config.Config) { c.Relay.StatusAddr = f.statusAddr })
	o.set("store-dir", func(c *config.Config) { c.Relay.StoreDir = f.storeDir })
	in := func(flag string, edit func(*config.RelayIngressConfig)) {
		o.set(flag, func(c *config.Config) { c.Relay.Ingress = editFirst(cfg.Relay.Ingress, edit) })
	}
	in("addr", func(in *config.RelayIngressConfig) { in.Addr = f.addr })
	in("hostports", func(in *config.RelayIngressConfig) { in.Hostports = f.hostports })
	in("allow-cidrs", func(in *config.RelayIngressConfig) { in.AllowCIDRs = f.allowCIDRs })
	in("deny-cidrs", func(in *config.RelayIngressConfig) { in.DenyCIDRs = f.denyCIDRs })
	f.log.apply(o)
	return cfg, nil
}

func runControl(ctx context.Context, cfg *config.Config) error {
	log, err := commandLogger(cfg)
	if err != nil {
		return err
	}
	cs, err := cfg.ControlSettings(os.Getenv)
	if err != nil {
		return err
	}
	opts := controlOptions(cs.ClientsTokens, cs.ClientsTokenRestrictions, cs.ClientsIngress, cs.StatusAddr, cs.StoreDir, log)
	if len(cs.RelaysTokens) > 0 {
		opts = append(opts, connet.ServerRelayTokens(cs.RelaysTokens, cs.RelaysTokenRestrictions))
		for _, in := range cs.RelaysIngress {
			opts = append(opts, connet.ServerRelayControlIngress(ingress(in)))
		}
	}
	srv, err := connet.NewServer(opts...)
	if err != nil {
		return err
	}
	log.Info("control server starting", "version", buildVersion())
	return srv.Run(ctx)
}

func runRelay(ctx context.Context, cfg *config.Config) error {
	log, err := commandLogger(cfg)
	if err != nil {
		return err
	}
	rs, err := cfg.RelaySettings(os.Getenv)
	if err != nil {
		return err
	}
	opts := []connet.RelayOption{
		connet.RelayToken(rs.Token),
		connet.RelayMetadata(rs.Metadata),
		connet.RelayControlAddress(rs.ControlAddr),
		connet.RelayControlServerName(rs.ControlName),
		connet.RelayHandshakeIdleTimeout(rs.HandshakeTimeout),
		connet.RelayStoreDir(rs.StoreDir),
		connet.RelayBuildVersion(buildVersion()),
		connet.RelayLogger(log),
	}
	if rs.ControlCAs != nil {
		opts = append(opts, connet.RelayControlCAs(rs.ControlCAs))
	}
	if rs.StatusAddr != "" {
		opts = append(opts, connet.RelayStatusAddress(rs.StatusAddr))
	}
	for _, in := range rs.Ingress {
		opts = append(opts, connet.RelayIngressAt(relayIngress(in, log, "--hostports")))
	}
	r, err := connet.NewRelay(opts...)
	if err != nil {
		return err
	}
	log.Info("relay starting", "version", buildVersion())
	return trustHint(r.Run(ctx), "control-cas-file", "control-name")
}
