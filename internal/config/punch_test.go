package config_test

import (
	"testing"

	"github.com/p2pconnet/connet/internal/config"
)

// TestClientBirthdayPunch: birthday-punch is enabled by default, takes
// "enabled" or "disabled", and anything else (a boolean too) is an error
// naming the file, the key and the values it takes.
func TestClientBirthdayPunch(t *testing.T) {
	for _, tt := range []struct {
		name  string
		extra string
		want  config.BirthdayPunch
		err   string
	}{
		{name: "default", want: config.BirthdayPunchEnabled},
		{name: "enabled", extra: `birthday-punch = "enabled"`, want: config.BirthdayPunchEnabled},
		{name: "disabled", extra: `birthday-punch = "disabled"`, want: config.BirthdayPunchDisabled},
		{name: "unknown", extra: `birthday-punch = "off"`, err: `invalid value "off": must be one of "enabled", "disabled"`},
		{name: "boolean", extra: `birthday-punch = false`, err: "expected string, got boolean"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "c.toml", "[client]\ntoken = \"t\"\n"+tt.extra+"\n")
			cfg, err := config.Load(path)
			if err == nil {
				var s config.ClientSettings
				if s, err = cfg.ClientSettings(nil); err == nil {
					if tt.err != "" {
						t.Fatalf("birthday-punch %q accepted, want an error", s.BirthdayPunch)
					}
					if s.BirthdayPunch != tt.want {
						t.Fatalf("birthday-punch %q, want %q", s.BirthdayPunch, tt.want)
					}
					return
				}
			}
			if tt.err == "" {
				t.Fatal(err)
			}
			wantErrors(t, err, wantErr{path, "client.birthday-punch", tt.err})
		})
	}
}
