package main

import (
	"context"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// overlay merges the value of each flag the user set into cfg, labelled with
// the flag's name so that a bad value is reported against the flag.
type overlay struct {
	flags *pflag.FlagSet
	cfg   *config.Config
}

// set merges what build writes into an empty config, if flag was given.
func (o overlay) set(flag string, build func(*config.Config)) {
	if !o.flags.Changed(flag) {
		return
	}
	var c config.Config
	build(&c)
	o.cfg.Merge(&c, "flag --"+flag)
}

// logFlags are the logging flags every command has.
type logFlags struct {
	level, format string
}

func (l *logFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "", "log level: fine, debug, info, warn or error (default info)")
	fs.StringVar(&l.format, "log-format", "", "log format: text or json (default text)")
}

func (l *logFlags) apply(o overlay) {
	o.set("log-level", func(c *config.Config) { c.LogLevel = l.level })
	o.set("log-format", func(c *config.Config) { c.LogFormat = l.format })
}

// aliases makes fs accept other spellings of some of its flags (the
// original connet's, where ours differ): pflag normalizes each alias to the
// flag's name, so an alias works exactly like the flag, help lists only the
// flag, and giving both spellings is the same as repeating the flag (list
// flags collect the values of both, in order).
func aliases(fs *pflag.FlagSet, names map[string]string) {
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if to, ok := names[name]; ok {
			return pflag.NormalizedName(to)
		}
		return pflag.NormalizedName(name)
	})
}

// editFirst returns list with its first element (a new one if list is
// empty) changed by edit. Ingress flags edit the first ingress; more
// ingresses come from config files only.
func editFirst[T any](list []T, edit func(*T)) []T {
	var first T
	if len(list) > 0 {
		first = list[0]
	}
	edit(&first)
	out := []T{first}
	if len(list) > 1 {
		out = append(out, list[1:]...)
	}
	return out
}

// configCommand is a server-side command (server, control, relay): its
// --config files (into configs) and flags become a config through load,
// which run gets; tests pass a run that only checks it.
func configCommand(use, short string, configs *[]string, load func(*pflag.FlagSet) (*config.Config, error),
	run func(context.Context, *config.Config) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := load(cmd.Flags())
			if err != nil {
				return err
			}
			return run(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringArrayVar(configs, "config", nil, "TOML config file; repeat to merge several in order")
	return cmd
}
