package main

import (
	"context"
	"log/slog"
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
	relayAddr               string
	relayHostports          []string
	log                     logFlags
}

func newServerCommand() *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a control server and a relay in one process",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(cmd.Context(), cmd.Flags(), &f)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&f.configs, "config", nil, "TOML config file; repeat to merge several in order")
	fs.StringSliceVar(&f.tokens, "tokens", nil, "client tokens")
	fs.StringVar(&f.tokensFile, "tokens-file", "", "file of client tokens, one per line")
	fs.StringVar(&f.statusAddr, "status-addr", "", "serve status as JSON over HTTP at this address")
	fs.StringVar(&f.storeDir, "store-dir", "", "directory for state kept across restarts")
	fs.StringVar(&f.addr, "addr", "", "UDP address of the (first) client ingress (default :19190)")
	fs.StringVar(&f.certFile, "cert-file", "", "TLS certificate file of the (first) client ingress")
	fs.StringVar(&f.keyFile, "key-file", "", "TLS key file of the (first) client ingress")
	fs.StringVar(&f.relayAddr, "relay-addr", "", "UDP address of the (first) relay ingress (default :19191)")
	fs.StringSliceVar(&f.relayHostports, "relay-hostports", nil, "host[:port]s advertised for the (first) relay ingress")
	f.log.register(fs)
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
	// Ingress flags edit the first ingress; the rest come from files only.
	first := func(c *config.Config, edit func(*config.IngressConfig)) {
		in := config.IngressConfig{}
		if len(cfg.Server.Ingress) > 0 {
			in = cfg.Server.Ingress[0]
		}
		edit(&in)
		c.Server.Ingress = append([]config.IngressConfig{in}, tail(cfg.Server.Ingress)...)
	}
	o.set("addr", func(c *config.Config) { first(c, func(in *config.IngressConfig) { in.Addr = f.addr }) })
	o.set("cert-file", func(c *config.Config) { first(c, func(in *config.IngressConfig) { in.CertFile = f.certFile }) })
	o.set("key-file", func(c *config.Config) { first(c, func(in *config.IngressConfig) { in.KeyFile = f.keyFile }) })
	firstRelay := func(c *config.Config, edit func(*config.RelayIngressConfig)) {
		in := config.RelayIngressConfig{}
		if len(cfg.Server.RelayIngress) > 0 {
			in = cfg.Server.RelayIngress[0]
		}
		edit(&in)
		c.Server.RelayIngress = append([]config.RelayIngressConfig{in}, tail(cfg.Server.RelayIngress)...)
	}
	o.set("relay-addr", func(c *config.Config) {
		firstRelay(c, func(in *config.RelayIngressConfig) { in.Addr = f.relayAddr })
	})
	o.set("relay-hostports", func(c *config.Config) {
		firstRelay(c, func(in *config.RelayIngressConfig) { in.Hostports = f.relayHostports })
	})
	f.log.apply(o)
	return cfg, nil
}

func tail[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s[1:]
}

func runServer(ctx context.Context, fs *pflag.FlagSet, f *serverFlags) error {
	cfg, err := f.load(fs)
	if err != nil {
		return err
	}
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
		opts = append(opts, connet.ServerRelayIngress(relayIngress(in)))
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
	return connet.Ingress{Addr: in.Addr, Cert: in.Certificate, Restriction: in.Restriction}
}

func relayIngress(in config.RelayIngress) connet.RelayIngress {
	return connet.RelayIngress{Addr: in.Addr, Hostports: in.Hostports, Restriction: in.Restriction,
		MaxClientStreams: in.MaxClientStreams, MaxPendingStreams: in.MaxPendingStreams}
}

// commandLogger builds the logger from a loaded config.
func commandLogger(cfg *config.Config) (*slog.Logger, error) {
	s, err := cfg.LogSettings()
	if err != nil {
		return nil, err
	}
	return newLogger(os.Stderr, s), nil
}
