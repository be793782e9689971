package main

import (
	"io"
	"log/slog"

	"github.com/p2pconnet/connet/internal/config"
)

// newLogger builds the process logger from the validated log settings.
func newLogger(w io.Writer, s config.LogSettings) *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.Level, ReplaceAttr: levelNames}
	if s.Format == config.LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// levelNames prints connet's extra "fine" level by name.
func levelNames(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.LevelKey {
		if lvl, ok := a.Value.Any().(slog.Level); ok && lvl <= config.LevelFine {
			a.Value = slog.StringValue("FINE")
		}
	}
	return a
}
