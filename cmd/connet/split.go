package main

import (
	"errors"
	"os"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/spf13/cobra"
)

// errSplitUnavailable is returned by control and relay until split
// deployments exist; their configs are still validated so that a config
// written today keeps working.
var errSplitUnavailable = errors.New("running control and relay servers apart is not available in this build yet; use 'connet server'")

func newControlCommand() *cobra.Command {
	var configs []string
	cmd := &cobra.Command{
		Use:   "control",
		Short: "Run a control server on its own (relays join it with relay tokens)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configs...)
			if err != nil {
				return err
			}
			if _, err := cfg.ControlSettings(os.Getenv); err != nil {
				return err
			}
			return errSplitUnavailable
		},
	}
	cmd.Flags().StringArrayVar(&configs, "config", nil, "TOML config file; repeat to merge several in order")
	return cmd
}

func newRelayCommand() *cobra.Command {
	var configs []string
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Run a relay server on its own, joined to a control server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configs...)
			if err != nil {
				return err
			}
			if _, err := cfg.RelaySettings(os.Getenv); err != nil {
				return err
			}
			return errSplitUnavailable
		},
	}
	cmd.Flags().StringArrayVar(&configs, "config", nil, "TOML config file; repeat to merge several in order")
	return cmd
}
