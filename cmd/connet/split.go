package main

import (
	"context"
	"os"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/config"
	"github.com/spf13/cobra"
)

func newControlCommand() *cobra.Command {
	return newConfigCommand("control", "Run a control server on its own; relays join it with relay tokens", runControl)
}

func newRelayCommand() *cobra.Command {
	return newConfigCommand("relay", "Run a relay server on its own, joined to a control server", runRelay)
}

// newConfigCommand is a command configured by --config files and the log
// flags only.
func newConfigCommand(use, short string, run func(context.Context, *config.Config) error) *cobra.Command {
	var configs []string
	var log logFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configs...)
			if err != nil {
				return err
			}
			log.apply(overlay{flags: cmd.Flags(), cfg: cfg})
			return run(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringArrayVar(&configs, "config", nil, "TOML config file; repeat to merge several in order")
	log.register(cmd.Flags())
	return cmd
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
		opts = append(opts, connet.RelayIngressAt(relayIngress(in)))
	}
	r, err := connet.NewRelay(opts...)
	if err != nil {
		return err
	}
	log.Info("relay starting", "version", buildVersion())
	return r.Run(ctx)
}
