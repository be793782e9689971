package main

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/config"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type serverFlags struct {
	configs                 []string
	tokens                  []string
	tokensFile              string
	statusAddr, storeDir    string
	addr, certFile, keyFile string
	allowCIDRs, denyCIDRs   []string
	relayAddr               string
	relayHostports          []string
	relayAllow, relayDeny   []string
	log                     logFlags
}

func newServerCommand() *cobra.Command { return serverCommand(runServer) }

// serverCommand builds the server command around run, which gets the config
// the files and flags give (tests check it without running a server).
func serverCommand(run func(context.Context, *config.Config) error) *cobra.Command {
	var f serverFlags
	cmd := configCommand("server", "Run a control server and a relay in one process", &f.configs, f.load, run)
	fs := cmd.Flags()
	fs.StringSliceVar(&f.tokens, "tokens", nil, "client tokens")
	fs.StringVar(&f.tokensFile, "tokens-file", "", "file of client tokens, one per line")
	fs.StringVar(&f.statusAddr, "status-addr", "", "serve status as JSON over HTTP at this address")
	fs.StringVar(&f.storeDir, "store-dir", "", "directory for state kept across restarts")
	fs.StringVar(&f.addr, "addr", "", "UDP address of the (first) client ingress (default :19190)")
	fs.StringVar(&f.certFile, "cert-file", "", "TLS certificate file of the (first) client ingress")
	fs.StringVar(&f.keyFile, "key-file", "", "TLS key file of the (first) client ingress")
	fs.StringVar(&f.relayAddr, "relay-addr", "", "UDP address of the (first) relay ingress (default :19191)")
	fs.StringSliceVar(&f.allowCIDRs, "allow-cidrs", nil, "networks (CIDR) the (first) client ingress accepts clients from")
	fs.StringSliceVar(&f.denyCIDRs, "deny-cidrs", nil, "networks (CIDR) the (first) client ingress refuses clients from")
	fs.StringSliceVar(&f.relayHostports, "relay-hostports", nil, "host[:port]s advertised for the (first) relay ingress")
	fs.StringSliceVar(&f.relayAllow, "relay-allow-cidrs", nil, "networks (CIDR) the (first) relay ingress accepts clients from")
	fs.StringSliceVar(&f.relayDeny, "relay-deny-cidrs", nil, "networks (CIDR) the (first) relay ingress refuses clients from")
	f.log.register(fs)
	aliases(fs, map[string]string{"relay-hostport": "relay-hostports"})
	return cmd
}

func (f *serverFlags) load(fs *pflag.FlagSet) (*config.Config, error) {
	cfg, err := config.Load(f.configs...)
	if err != nil {
		return nil, err
	}
	o := overlay{flags: fs, cfg: cfg}
	o.set("tokens", func(c *config.Config) { c.Server.Tokens = f.tokens })
	o.set("tokens-file", func(c *config.Config) { c.Server.TokensFile = f.tokensFile })
	o.set("status-addr", func(c *config.Config) { c.Server.StatusAddr = f.statusAddr })
	o.set("store-dir", func(c *config.Config) { c.Server.StoreDir = f.storeDir })
	in := func(flag string, edit func(*config.IngressConfig)) {
		o.set(flag, func(c *config.Config) { c.Server.Ingress = editFirst(cfg.Server.Ingress, edit) })
	}
	in("addr", func(in *config.IngressConfig) { in.Addr = f.addr })
	in("cert-file", func(in *config.IngressConfig) { in.CertFile = f.certFile })
	in("key-file", func(in *config.IngressConfig) { in.KeyFile = f.keyFile })
	in("allow-cidrs", func(in *config.IngressConfig) { in.AllowCIDRs = f.allowCIDRs })
	in("deny-cidrs", func(in *config.IngressConfig) { in.DenyCIDRs = f.denyCIDRs })
	relayIn := func(flag string, edit func(*config.RelayIngressConfig)) {
		o.set(flag, func(c *config.Config) { c.Server.RelayIngress = editFirst(cfg.Server.RelayIngress, edit) })
	}
	relayIn("relay-addr", func(in *config.RelayIngressConfig) { in.Addr = f.relayAddr })
	relayIn("relay-hostports", func(in *config.RelayIngressConfig) { in.Hostports = f.relayHostports })
	relayIn("relay-allow-cidrs", func(in *config.RelayIngressConfig) { in.AllowCIDRs = f.relayAllow })
	relayIn("relay-deny-cidrs", func(in *config.RelayIngressConfig) { in.DenyCIDRs = f.relayDeny })
	f.log.apply(o)
	return cfg, nil
}

func runServer(ctx context.Context, cfg *config.Config) error {
	log, err := commandLogger(cfg)
	if err != nil {
		return err
	}
	ss, err := cfg.ServerSettings(os.Getenv)
	if err != nil {
		return err
	}
	opts := controlOptions(ss.Tokens, ss.TokenRestrictions, ss.Ingress, ss.StatusAddr, ss.StoreDir, log)
	for _, in := range ss.RelayIngress {
		opts = append(opts, connet.ServerRelayIngress(relayIngress(in, log, "--relay-hostports")))
	}
	srv, err := connet.NewServer(opts...)
	if err != nil {
		return err
	}
	log.Info("server starting", "version", buildVersion())
	return srv.Run(ctx)
}

// controlOptions are the options every control server gets from its config.
func controlOptions(tokens []string, restrictions []config.TokenRestriction, ingresses []config.Ingress,
	statusAddr, storeDir string, log *slog.Logger) []connet.ServerOption {
	opts := []connet.ServerOption{
		connet.ServerClientTokens(tokens...),
		connet.ServerStoreDir(storeDir),
		connet.ServerBuildVersion(buildVersion()),
		connet.ServerLogger(log),
	}
	if len(restrictions) > 0 {
		rs := make([]connet.TokenRestriction, len(restrictions))
		for i, r := range restrictions {
			rs[i] = connet.TokenRestriction{IP: r.CIDRs, NameMatches: r.NameMatches, Role: string(r.Role)}
		}
		opts = append(opts, connet.ServerClientTokenRestrictions(rs...))
	}
	for _, in := range ingresses {
		opts = append(opts, connet.ServerIngress(ingress(in)))
	}
	if statusAddr != "" {
		opts = append(opts, connet.ServerStatusAddress(statusAddr))
	}
	return opts
}

func ingress(in config.Ingress) connet.Ingress {
	return connet.Ingress{Addr: in.Addr, Cert: in.Certificate, Restriction: in.Restriction,
		NoQUIC: !in.Transports.QUIC, NoTCP: !in.Transports.TCP, NoWSS: !in.Transports.WSS, TCPAddr: in.Transports.TCPAddr}
}

// relayIngress converts a relay ingress, warning when it is advertised on
// loopback only (the default): clients on other machines would be handed
// an address they cannot reach. flag is the command's hostports flag.
func relayIngress(in config.RelayIngress, log *slog.Logger, flag string) connet.RelayIngress {
	if loopbackOnly(in.Hostports) {
		log.Warn("relay advertised on loopback only: clients on other machines cannot use it; set hostports to names or addresses they can reach",
			"addr", in.Addr, "hostports", in.Hostports, "flag", flag)
	}
	return connet.RelayIngress{Addr: in.Addr, Hostports: in.Hostports, Restriction: in.Restriction,
		MaxClientStreams: in.MaxClientStreams, MaxPendingStreams: in.MaxPendingStreams,
		NoQUIC: !in.Transports.QUIC, NoTCP: !in.Transports.TCP, NoWSS: !in.Transports.WSS, TCPAddr: in.Transports.TCPAddr}
}

// commandLogger builds the logger from a loaded config.
func commandLogger(cfg *config.Config) (*slog.Logger, error) {
	s, err := cfg.LogSettings()
	if err != nil {
		return nil, err
	}
	return newLogger(os.Stderr, s), nil
}

// loopbackOnly tells whether every host:port names this machine's loopback.
func loopbackOnly(hostports []string) bool {
	for _, hp := range hostports {
		host, _, err := net.SplitHostPort(hp)
		if err != nil {
			return false
		}
		if ip, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !ip.IsLoopback()) {
			return false
		}
	}
	return len(hostports) > 0
}
