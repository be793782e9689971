package main

import (
	"fmt"
	"strings"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/spf13/pflag"
)

// endpointFlags describe the one destination or source the command line
// can add (more need a config file).
type endpointFlags struct {
	prefix                                 string
	name, url, route, dialTimeout          string
	relayEncryptions                       []string
	proxyProto, casFile, certFile, keyFile string
	lbPolicy, lbRetry                      string
	lbRetryMax                             int
	allowedOrigins, allowedHosts           []string
	serveDotfiles                          bool
}

func (e *endpointFlags) register(fs *pflag.FlagSet, prefix, what string) {
	e.prefix = prefix
	fs.StringVar(&e.name, prefix+"-name", "", "name of the "+what)
	fs.StringVar(&e.url, prefix+"-url", "", "URL of the "+what)
	fs.StringVar(&e.route, prefix+"-route", "", "routes the "+what+" may use: any, direct or relay")
	fs.StringVar(&e.dialTimeout, prefix+"-dial-timeout", "", "dial timeout of the "+what+" (default 0: wait)")
	fs.StringSliceVar(&e.relayEncryptions, prefix+"-relay-encryptions", nil, "relay encryptions of the "+what)
	fs.StringVar(&e.casFile, prefix+"-cas-file", "", "CAs file of the "+what+" (TLS)")
	fs.StringVar(&e.certFile, prefix+"-cert-file", "", "certificate file of the "+what+" (TLS)")
	fs.StringVar(&e.keyFile, prefix+"-key-file", "", "key file of the "+what+" (TLS)")
	if prefix == "dst" {
		fs.StringVar(&e.proxyProto, prefix+"-proxy-proto-version", "", "PROXY protocol version to send: v1 or v2")
		fs.BoolVar(&e.serveDotfiles, prefix+"-serve-dotfiles", false, "serve names starting with '.' from a file:// destination (hidden by default)")
	} else {
		fs.StringVar(&e.lbPolicy, prefix+"-lb-policy", "", "load balancer policy")
		fs.StringVar(&e.lbRetry, prefix+"-lb-retry", "", "load balancer retry policy")
		fs.IntVar(&e.lbRetryMax, prefix+"-lb-retry-max", 0, "load balancer retry limit")
		fs.StringSliceVar(&e.allowedOrigins, prefix+"-allowed-origins", nil, "browser origins a ws/wss source accepts besides its own (e.g. https://app.example.com, or *)")
		fs.StringSliceVar(&e.allowedHosts, prefix+"-allowed-hosts", nil, "host names an http/https/ws/wss source answers to besides localhost, IP addresses and its URL's host (e.g. app.example.com, or *)")
	}
}

// apply overlays the endpoint flags on the config.
func (e *endpointFlags) apply(o overlay) error {
	if !e.given(o.flags) {
		return nil
	}
	if err := e.complete(o); err != nil {
		return err
	}
	e.setKeys(o)
	return nil
}

// given tells whether any of this endpoint's flags was set.
func (e *endpointFlags) given(fs *pflag.FlagSet) bool {
	given := false
	fs.VisitAll(func(fl *pflag.Flag) {
		if fl.Changed && strings.HasPrefix(fl.Name, e.prefix+"-") {
			given = true
		}
	})
	return given
}

// complete checks that the flags name the endpoint and that it has a URL.
func (e *endpointFlags) complete(o overlay) error {
	if e.name == "" {
		return fmt.Errorf("--%s-name is required with the other --%s-* flags", e.prefix, e.prefix)
	}
	// An endpoint needs a URL: from the flag, or from the config files when
	// the flags edit an endpoint they declare.
	if !o.flags.Changed(e.prefix+"-url") && !e.declared(o.cfg) {
		return fmt.Errorf("--%s-name %q needs --%s-url (or a [client.%s.%s] table with a url in a --config file)",
			e.prefix, e.name, e.prefix, e.table(), e.name)
	}
	return nil
}

// setKeys merges each endpoint flag that was given into the endpoint's
// table; edit writes the value into a destination's table and a source's,
// and only the one of this endpoint's kind is kept.
func (e *endpointFlags) setKeys(o overlay) {
	set := func(flag string, edit func(d *config.DestinationConfig, s *config.SourceConfig)) {
		o.set(e.prefix+"-"+flag, func(c *config.Config) {
			var d config.DestinationConfig
			var s config.SourceConfig
			edit(&d, &s)
			if e.prefix == "dst" {
				c.Client.Destinations = map[string]config.DestinationConfig{e.name: d}
			} else {
				c.Client.Sources = map[string]config.SourceConfig{e.name: s}
			}
		})
	}
	set("url", func(d *config.DestinationConfig, s *config.SourceConfig) { d.URL, s.URL = e.url, e.url })
	set("route", func(d *config.DestinationConfig, s *config.SourceConfig) { d.Route, s.Route = e.route, e.route })
	set("dial-timeout", func(d *config.DestinationConfig, s *config.SourceConfig) {
		d.DialTimeout, s.DialTimeout = e.dialTimeout, e.dialTimeout
	})
	set("relay-encryptions", func(d *config.DestinationConfig, s *config.SourceConfig) {
		d.RelayEncryptions, s.RelayEncryptions = e.relayEncryptions, e.relayEncryptions
	})
	set("cas-file", func(d *config.DestinationConfig, s *config.SourceConfig) { d.CAsFile, s.CAsFile = e.casFile, e.casFile })
	set("cert-file", func(d *config.DestinationConfig, s *config.SourceConfig) {
		d.CertFile, s.CertFile = e.certFile, e.certFile
	})
	set("key-file", func(d *config.DestinationConfig, s *config.SourceConfig) { d.KeyFile, s.KeyFile = e.keyFile, e.keyFile })
	set("proxy-proto-version", func(d *config.DestinationConfig, _ *config.SourceConfig) { d.ProxyProtoVersion = e.proxyProto })
	set("lb-policy", func(_ *config.DestinationConfig, s *config.SourceConfig) { s.LBPolicy = e.lbPolicy })
	set("lb-retry", func(_ *config.DestinationConfig, s *config.SourceConfig) { s.LBRetry = e.lbRetry })
	set("lb-retry-max", func(_ *config.DestinationConfig, s *config.SourceConfig) { s.LBRetryMax = e.lbRetryMax })
	set("allowed-origins", func(_ *config.DestinationConfig, s *config.SourceConfig) { s.AllowedOrigins = e.allowedOrigins })
	set("allowed-hosts", func(_ *config.DestinationConfig, s *config.SourceConfig) { s.AllowedHosts = e.allowedHosts })
	set("serve-dotfiles", func(d *config.DestinationConfig, _ *config.SourceConfig) { d.ServeDotfiles = e.serveDotfiles })
}

// table is the config table of this kind of endpoint.
func (e *endpointFlags) table() string {
	if e.prefix == "dst" {
		return "destinations"
	}
	return "sources"
}

// declared tells whether the config files declare this endpoint with a URL.
func (e *endpointFlags) declared(cfg *config.Config) bool {
	if e.prefix == "dst" {
		return cfg.Client.Destinations[e.name].URL != ""
	}
	return cfg.Client.Sources[e.name].URL != ""
}
