package config

import (
	"log/slog"

	"github.com/p2pconnet/connet/internal/logs"
)

// LevelFine is connet's "fine" log level: more verbose than slog.LevelDebug,
// for per-packet and per-stream chatter that would drown debug output.
const LevelFine = logs.LevelFine

// LogFormat is the slog handler to use.
type LogFormat string

// Log formats accepted by log-format.
const (
	LogFormatText LogFormat = "text"
	LogFormatJSON LogFormat = "json"
)

// LogSettings is the validated log-level / log-format pair.
type LogSettings struct {
	Level  slog.Level
	Format LogFormat
}

// logLevels maps the names accepted by log-level to slog levels.
var logLevels = map[string]slog.Level{
	"fine":  LevelFine,
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// LogSettings validates the root log-level (default info) and log-format
// (default text) keys. It is separate from the role settings because every
// command needs logging, and it must work before a role is chosen.
func (c *Config) LogSettings() (LogSettings, error) {
	r := newResolver(c, nil)
	s := LogSettings{Level: slog.LevelInfo, Format: LogFormatText}
	if c.LogLevel != "" {
		if lvl, ok := logLevels[c.LogLevel]; ok {
			s.Level = lvl
		} else {
			r.failf(keyPath{"log-level"}, "invalid value %q: must be one of \"fine\", \"debug\", \"info\", \"warn\", \"error\"", c.LogLevel)
		}
	}
	s.Format = oneOf(r, keyPath{"log-format"}, c.LogFormat, LogFormatText, LogFormatText, LogFormatJSON)
	if err := r.err(); err != nil {
		return LogSettings{}, err
	}
	return s, nil
}
