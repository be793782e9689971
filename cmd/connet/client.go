package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/config"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// clientFlags are the flags of the root command, which runs a client.
type clientFlags struct {
	configs              []string
	token, tokenFile     string
	metadata             string
	serverAddr           string
	serverCAsFile        string
	serverName           string
	directAddr           string
	resetKeyFile         string
	statusAddr           string
	natPMP               string
	birthdayPunch        string
	handshakeIdleTimeout string
	relayEncryptions     []string
	dst, src             endpointFlags
	log                  logFlags
}

func newRootCommand() *cobra.Command { return newClientCommand(runClient) }

// newClientCommand builds the root command around run, so tests can
// exercise the flags and config loading without connecting.
func newClientCommand(run func(context.Context, *pflag.FlagSet, *clientFlags) error) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "connet",
		Short: "Expose a service on one device to another, peer to peer, through NATs",
		Long: `connet runs a client: it connects to a control server and runs the
destinations (services this device exposes) and sources (local listeners
reaching remote destinations) given by --config files and flags.`,
		Args: unknownCommand,
		// cobra applies its default distance only where it suggests by
		// itself, not in SuggestionsFor, which unknownCommand calls.
		SuggestionsMinimumDistance: 2,
		SilenceUsage:               true,
		SilenceErrors:              true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), cmd.Flags(), &f)
		},
	}
	f.register(cmd.Flags())
	cmd.AddCommand(newServerCommand(), newControlCommand(), newRelayCommand(), newCheckCommand(), newVersionCommand(), newStatusCommand())
	return cmd
}

// register adds the client's flags to fs.
func (f *clientFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.configs, "config", nil, "TOML config file; repeat to merge several in order")
	fs.StringVar(&f.token, "token", "", "token for the control server (else token-file, token, then $CONNET_TOKEN)")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the token for the control server")
	fs.StringVar(&f.metadata, "metadata", "", "text sent to the control server to help identify this client")
	fs.StringVar(&f.serverAddr, "server-addr", "", "control server host:port (default 127.0.0.1:19190)")
	fs.StringVar(&f.serverCAsFile, "server-cas-file", "", "PEM file of CAs to trust for the control server")
	fs.StringVar(&f.serverName, "server-name", "", "name in the control server's certificate (default: host of --server-addr)")
	fs.StringVar(&f.directAddr, "direct-addr", "", "UDP address for control and peer connections (default :19192)")
	fs.StringVar(&f.resetKeyFile, "direct-stateless-reset-key-file", "", "file holding the QUIC stateless reset key")
	fs.StringVar(&f.statusAddr, "status-addr", "", "serve status as JSON over HTTP at this address")
	fs.StringVar(&f.natPMP, "nat-pmp", "", "port mapping on the NAT gateway: system, dial, disabled, or nat-pmp, pcp, upnp for one protocol (default system)")
	fs.StringVar(&f.birthdayPunch, "birthday-punch", "", "punching through symmetric NATs with bursts of probes: enabled or disabled (default enabled)")
	fs.StringVar(&f.handshakeIdleTimeout, "handshake-idle-timeout", "", "QUIC handshake idle timeout (default 5s)")
	fs.StringSliceVar(&f.relayEncryptions, "relay-encryptions", nil, "relay encryptions: none, tls, dhxcp (default none)")
	f.dst.register(fs, "dst", "destination")
	f.src.register(fs, "src", "source")
	f.log.register(fs)
	aliases(fs, map[string]string{"dst-relay-encryption": "dst-relay-encryptions", "src-relay-encryption": "src-relay-encryptions"})
}

// unknownCommand rejects arguments to the root command, which takes none:
// the first one is a subcommand cobra did not find, so suggest the nearest.
// (cobra suggests by itself only for a root command without Args.)
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
	}
	return fmt.Errorf("%s; run 'connet --help' for the commands", msg)
}

// load loads the config files and overlays the flags.
func (f *clientFlags) load(fs *pflag.FlagSet) (*config.Config, error) {
	cfg, err := config.Load(f.configs...)
	if err != nil {
		return nil, err
	}
	o := overlay{flags: fs, cfg: cfg}
	o.set("token", func(c *config.Config) { c.Client.Token = f.token })
	o.set("token-file", func(c *config.Config) { c.Client.TokenFile = f.tokenFile })
	o.set("metadata", func(c *config.Config) { c.Client.Metadata = f.metadata })
	o.set("server-addr", func(c *config.Config) { c.Client.ServerAddr = f.serverAddr })
	o.set("server-cas-file", func(c *config.Config) { c.Client.ServerCAsFile = f.serverCAsFile })
	o.set("server-name", func(c *config.Config) { c.Client.ServerName = f.serverName })
	o.set("direct-addr", func(c *config.Config) { c.Client.DirectAddr = f.directAddr })
	o.set("direct-stateless-reset-key-file", func(c *config.Config) { c.Client.DirectStatelessResetKeyFile = f.resetKeyFile })
	o.set("status-addr", func(c *config.Config) { c.Client.StatusAddr = f.statusAddr })
	o.set("nat-pmp", func(c *config.Config) { c.Client.NatPMP = f.natPMP })
	o.set("birthday-punch", func(c *config.Config) { c.Client.BirthdayPunch = f.birthdayPunch })
	o.set("handshake-idle-timeout", func(c *config.Config) { c.Client.HandshakeIdleTimeout = f.handshakeIdleTimeout })
	o.set("relay-encryptions", func(c *config.Config) { c.Client.RelayEncryptions = f.relayEncryptions })
	f.log.apply(o)
	if err := f.dst.apply(o); err != nil {
		return nil, err
	}
	if err := f.src.apply(o); err != nil {
		return nil, err
	}
	return cfg, nil
}

// settings loads the config and overlays the flags, builds the logger, and
// validates the [client] section.
func (f *clientFlags) settings(fs *pflag.FlagSet) (config.ClientSettings, *slog.Logger, error) {
	cfg, err := f.load(fs)
	if err != nil {
		return config.ClientSettings{}, nil, err
	}
	log, err := commandLogger(cfg)
	if err != nil {
		return config.ClientSettings{}, nil, err
	}
	cs, err := cfg.ClientSettings(os.Getenv)
	if err != nil {
		return config.ClientSettings{}, nil, err
	}
	if len(cs.Destinations) == 0 && len(cs.Sources) == 0 {
		log.Warn("no destinations or sources configured; the client only connects")
	}
	return cs, log, nil
}

// runClient runs the client until ctx ends, an endpoint fails, or the
// client stops.
func runClient(ctx context.Context, fs *pflag.FlagSet, f *clientFlags) error {
	cs, log, err := f.settings(fs)
	if err != nil {
		return err
	}
	endpoints, err := openEndpoints(cs, log)
	if err != nil {
		return err
	}
	defer endpoints.closeUnserved()
	opts := clientOptions(cs, log)
	log.Info("connecting to control server", "server", cs.ServerAddr, "version", buildVersion())
	// Start, not Connect: the sources answer their connections (refusing
	// them with the reason) while the control server is not reached yet,
	// and the status page lists them, instead of leaving both waiting.
	cl, err := connet.Start(ctx, opts...)
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	return endpoints.serve(ctx, cl)
}
