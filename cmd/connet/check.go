package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/spf13/cobra"
)

func newCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE...",
		Short: "Validate config files (merged in order) without running anything",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			cfg, err := config.Load(files...)
			if err != nil {
				return err
			}
			sections, err := checkSections(cfg)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "ok: %v\n", sections)
			return err
		},
	}
}

// checkSections validates every section the files contain and returns
// their names.
func checkSections(cfg *config.Config) ([]string, error) {
	var names []string
	var errs []error
	if _, err := cfg.LogSettings(); err != nil {
		errs = append(errs, err)
	}
	check := func(name string, section any, validate func() error) {
		if reflect.ValueOf(section).IsZero() {
			return
		}
		names = append(names, name)
		if err := validate(); err != nil {
			errs = append(errs, err)
		}
	}
	check("client", cfg.Client, func() error { _, err := cfg.ClientSettings(os.Getenv); return err })
	check("server", cfg.Server, func() error { _, err := cfg.ServerSettings(os.Getenv); return err })
	check("control", cfg.Control, func() error { _, err := cfg.ControlSettings(os.Getenv); return err })
	check("relay", cfg.Relay, func() error { _, err := cfg.RelaySettings(os.Getenv); return err })
	if len(names) == 0 && len(errs) == 0 {
		return nil, errors.New("no client, server, control or relay section found")
	}
	return names, errors.Join(errs...)
}
