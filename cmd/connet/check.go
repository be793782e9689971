package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/portmap"
	"github.com/p2pconnet/connet/internal/quota"
	"github.com/spf13/cobra"
)

func newCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE...",
		Short: "Validate config files (merged in order) and tell what they would run",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			// Keys Load could not take are reported together with every
			// other problem of what it could, so one run lists them all.
			cfg, loadErr := config.Load(files...)
			if cfg == nil {
				return loadErr
			}
			summary, err := checkSections(cfg)
			if err := errors.Join(loadErr, err); err != nil {
				return err
			}
			_, err = io.WriteString(cmd.OutOrStdout(), summary)
			return err
		},
	}
}

// checkSections validates every section the files contain and describes
// what each would run (every problem is reported, not just the first).
func checkSections(cfg *config.Config) (string, error) {
	var out strings.Builder
	var names []string
	var errs []error
	if _, err := cfg.LogSettings(); err != nil {
		errs = append(errs, err)
	}
	for _, sec := range sectionsOf(cfg) {
		if reflect.ValueOf(sec.table).IsZero() {
			continue
		}
		names = append(names, sec.name)
		if err := sec.check(cfg, &out); err != nil {
			errs = append(errs, err)
		}
	}
	if len(names) == 0 && len(errs) == 0 {
		return "", errors.New("no client, server, control or relay section found")
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	return fmt.Sprintf("ok: %s\n", strings.Join(names, ", ")) + out.String(), nil
}

// section is one section a config file may hold: its table, and check,
// which validates it and describes what it would run.
type section struct {
	name  string
	table any
	check func(*config.Config, *strings.Builder) error
}

// sectionsOf are the sections of cfg, in the order check describes them.
func sectionsOf(cfg *config.Config) []section {
	return []section{
		{"client", cfg.Client, checkClient},
		{"server", cfg.Server, checkServer},
		{"control", cfg.Control, checkControl},
		{"relay", cfg.Relay, checkRelay},
	}
}

func checkClient(cfg *config.Config, b *strings.Builder) error {
	s, err := cfg.ClientSettings(os.Getenv)
	if err == nil {
		describeClient(b, s)
	}
	return err
}

func checkServer(cfg *config.Config, b *strings.Builder) error {
	s, err := cfg.ServerSettings(os.Getenv)
	if err == nil {
		fmt.Fprintf(b, "server (connet server): %s\n", tokens(len(s.Tokens), "client"))
		describeIngresses(b, "clients", s.Ingress)
		describeRelayIngresses(b, s.RelayIngress)
		describeCommon(b, s.StatusAddr, s.StoreDir)
	}
	return err
}

func checkControl(cfg *config.Config, b *strings.Builder) error {
	s, err := cfg.ControlSettings(os.Getenv)
	if err == nil {
		fmt.Fprintf(b, "control server (connet control): %s, %s\n", tokens(len(s.ClientsTokens), "client"), tokens(len(s.RelaysTokens), "relay"))
		describeIngresses(b, "clients", s.ClientsIngress)
		describeIngresses(b, "relays", s.RelaysIngress)
		describeCommon(b, s.StatusAddr, s.StoreDir)
	}
	return err
}

func checkRelay(cfg *config.Config, b *strings.Builder) error {
	s, err := cfg.RelaySettings(os.Getenv)
	if err == nil {
		fmt.Fprintf(b, "relay (connet relay): joins the control server at %s (certificate name %s, %s)\n",
			s.ControlAddr, s.ControlName, trust(s.ControlCAs != nil, "control-cas-file"))
		describeRelayIngresses(b, s.Ingress)
		describeCommon(b, s.StatusAddr, s.StoreDir)
	}
	return err
}

func describeClient(b *strings.Builder, s config.ClientSettings) {
	fmt.Fprintf(b, "client (connet): %s, %s; connects to the control server at %s (certificate name %s, %s); peers reach it at %s\n",
		count(len(s.Destinations), "destination"), count(len(s.Sources), "source"),
		s.ServerAddr, s.ServerName, trust(s.ServerCAs != nil, "server-cas-file"), s.DirectAddr)
	if f := fallbacks(s.Fallback); len(f) > 0 {
		names := make([]string, len(f))
		for i, t := range f {
			names[i] = string(t)
		}
		fmt.Fprintf(b, "  if QUIC does not connect within 1 s (UDP blocked or refused): falls back to %s at %s, trying QUIC again every %v\n",
			strings.Join(names, " then "), s.Fallback.Addr, s.Fallback.QUICRetry)
	}
	if len(s.Destinations) == 0 && len(s.Sources) == 0 {
		b.WriteString("  no destinations or sources: the client only connects\n")
	}
	for _, name := range slices.Sorted(maps.Keys(s.Destinations)) {
		d := s.Destinations[name]
		fmt.Fprintf(b, "  destination %q: exposes %s (route %s)\n", name, d.URL, d.Route)
	}
	for _, name := range slices.Sorted(maps.Keys(s.Sources)) {
		src := s.Sources[name]
		fmt.Fprintf(b, "  source %q: listens on %s for destination %q (route %s)\n", name, src.URL, name, src.Route)
	}
	fmt.Fprintf(b, "  port mapping (nat-pmp %s): %s\n", s.NatPMP, describeNatPMP(s.NatPMP))
	if s.BirthdayPunch != config.BirthdayPunchEnabled {
		b.WriteString("  birthday punch: off (no probes sent or asked for; a symmetric NAT on either side stays relayed)\n")
	}
	if len(s.Destinations) > 0 {
		fmt.Fprintf(b, "  each peer may have %d new connections waiting for an answer (max-pending-streams)\n", quota.Max(s.MaxPendingStreams))
	}
	if s.StatusAddr != "" {
		fmt.Fprintf(b, "  status at http://%s\n", s.StatusAddr)
	}
}

// describeNatPMP says what a nat-pmp mode does.
func describeNatPMP(m portmap.Mode) string {
	switch m {
	case portmap.ModeDisabled:
		return "off"
	case portmap.ModeDial:
		return "NAT-PMP, then PCP, then UPnP, at the first address of the subnet facing the control server"
	case portmap.ModeOnlyNATPMP:
		return "NAT-PMP only, at the default route's gateway"
	case portmap.ModeOnlyPCP:
		return "PCP only, at the default route's gateway"
	case portmap.ModeOnlyUPnP:
		return "UPnP-IGD only, found by SSDP on the default route's network"
	}
	return "NAT-PMP, then PCP, then UPnP, at the default route's gateway"
}

func describeIngresses(b *strings.Builder, who string, ins []config.Ingress) {
	for _, in := range ins {
		fmt.Fprintf(b, "  listens for %s on %s%s\n", who, listening(in.Addr, in.Transports), restricted(in.Restriction))
	}
}

func describeRelayIngresses(b *strings.Builder, ins []config.RelayIngress) {
	for _, in := range ins {
		fmt.Fprintf(b, "  relays clients on %s, advertised as %s%s\n", listening(in.Addr, in.Transports), strings.Join(in.Hostports, ", "), restricted(in.Restriction))
	}
}

// listening says where an ingress listens, per transport.
func listening(addr string, t config.IngressTransports) string {
	var parts []string
	if t.QUIC {
		parts = append(parts, addr+" (UDP)")
	}
	if t.TCP || t.WSS {
		tcp := t.TCPAddr
		if tcp == "" {
			tcp = addr
		}
		switch {
		case t.TCP && t.WSS:
			tcp += " (TCP: TLS and WebSocket)"
		case t.TCP:
			tcp += " (TCP: TLS)"
		default:
			tcp += " (TCP: WebSocket)"
		}
		parts = append(parts, tcp)
	}
	return strings.Join(parts, " and ")
}

func describeCommon(b *strings.Builder, statusAddr, storeDir string) {
	if statusAddr != "" {
		fmt.Fprintf(b, "  status at http://%s\n", statusAddr)
	}
	if storeDir == "" {
		b.WriteString("  state in a temporary directory, lost on restart (set store-dir)\n")
	} else {
		fmt.Fprintf(b, "  state in %s\n", storeDir)
	}
}

func restricted(r config.CIDRRestriction) string {
	if r.Empty() {
		return ""
	}
	var parts []string
	if len(r.Allow) > 0 {
		parts = append(parts, "allows "+prefixes(r.Allow))
	}
	if len(r.Deny) > 0 {
		parts = append(parts, "denies "+prefixes(r.Deny))
	}
	return ", " + strings.Join(parts, ", ")
}

func prefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}

func tokens(n int, who string) string { return count(n, who+" token") }

// count says "1 thing" or "n things".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func trust(casFile bool, key string) string {
	if casFile {
		return "trusting the CAs of " + key
	}
	return "trusting the system's CAs"
}
