package main

import (
	"github.com/p2pconnet/connet/internal/config"
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
