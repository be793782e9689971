package config_test

import (
	"log/slog"
	"testing"

	"github.com/p2pconnet/connet/internal/config"
)

func TestLogSettings(t *testing.T) {
	if config.LevelFine >= slog.LevelDebug {
		t.Fatalf("fine must be more verbose than debug")
	}
	tests := []struct {
		level, format string
		want          config.LogSettings
		errKeys       []string
	}{
		{"", "", config.LogSettings{Level: slog.LevelInfo, Format: config.LogFormatText}, nil},
		{"fine", "json", config.LogSettings{Level: config.LevelFine, Format: config.LogFormatJSON}, nil},
		{"debug", "text", config.LogSettings{Level: slog.LevelDebug, Format: config.LogFormatText}, nil},
		{"info", "", config.LogSettings{Level: slog.LevelInfo, Format: config.LogFormatText}, nil},
		{"warn", "", config.LogSettings{Level: slog.LevelWarn, Format: config.LogFormatText}, nil},
		{"error", "", config.LogSettings{Level: slog.LevelError, Format: config.LogFormatText}, nil},
		{"trace", "yaml", config.LogSettings{}, []string{"log-level", "log-format"}},
		{"INFO", "", config.LogSettings{}, []string{"log-level"}},
	}
	for _, tt := range tests {
		var cfg config.Config
		cfg.Merge(&config.Config{LogLevel: tt.level, LogFormat: tt.format}, "flag --log")
		got, err := cfg.LogSettings()
		if tt.errKeys != nil {
			var want []wantErr
			for _, k := range tt.errKeys {
				want = append(want, wantErr{"flag --log", k, "invalid value"})
			}
			wantErrors(t, err, want...)
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q/%q: got %+v, %v; want %+v", tt.level, tt.format, got, err, tt.want)
		}
	}
}
