package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/p2pconnet/connet/internal/config"
	"github.com/spf13/cobra"
)

// defaultStatusAddr is the client's status address in the spec's examples:
// what `connet status` asks when given neither an address nor a config.
const defaultStatusAddr = "127.0.0.1:19182"

// statusTimeout bounds the whole request: a status page answers at once.
const statusTimeout = 5 * time.Second

func newStatusCommand() *cobra.Command {
	var configs []string
	var raw bool
	cmd := &cobra.Command{
		Use:   "status [ADDR]",
		Short: "Show the status of a running client, server, control server or relay",
		Long: `status asks the status server of a running connet (its status-addr) and
prints what it says as tables: a client's control connection, relays,
endpoints with their peers and paths (kind and RTT), and last errors; a
server's clients and relays; a relay's control connection and clients.

ADDR defaults to the status-addr of the --config files (client, server,
control or relay section, in that order), else ` + defaultStatusAddr + `.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := statusAddr(args, configs)
			if err != nil {
				return err
			}
			doc, err := fetchStatus(cmd.Context(), addr)
			if err != nil {
				if len(args) == 0 && len(configs) == 0 {
					return fmt.Errorf("%w\n(%s is the default, a client's; for another, give its status-addr: connet status ADDR, or --config FILE)", err, defaultStatusAddr)
				}
				return err
			}
			if raw {
				_, err := cmd.OutOrStdout().Write(doc)
				return err
			}
			return renderStatus(cmd.OutOrStdout(), doc, time.Now())
		},
	}
	cmd.Flags().StringArrayVar(&configs, "config", nil, "TOML config file whose status-addr to ask; repeat to merge several in order")
	cmd.Flags().BoolVar(&raw, "json", false, "print the JSON document as the status server sent it")
	return cmd
}

// statusAddr picks the address to ask: the argument, else the configs'
// status-addr, else the default.
func statusAddr(args, configs []string) (string, error) {
	if len(args) == 1 {
		return args[0], nil
	}
	if len(configs) == 0 {
		return defaultStatusAddr, nil
	}
	cfg, err := config.Load(configs...)
	if err != nil {
		return "", err
	}
	for _, a := range []string{cfg.Client.StatusAddr, cfg.Server.StatusAddr, cfg.Control.StatusAddr, cfg.Relay.StatusAddr} {
		if a != "" {
			return a, nil
		}
	}
	return "", fmt.Errorf("no status-addr in %s: set one there (and restart connet), or give the address", strings.Join(configs, ", "))
}

// statusURL turns a status address into the URL to GET. A listen address
// without a host, or with an unspecified one, is asked on loopback.
func statusURL(addr string) (string, error) {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return addr, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("status address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/", nil
}

// fetchStatus returns the status document served at addr.
func fetchStatus(ctx context.Context, addr string) ([]byte, error) {
	url, err := statusURL(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("no status server at %s (is connet running with status-addr set to it?): %w", addr, op.Err)
		}
		return nil, fmt.Errorf("status server at %s: %w", addr, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusDoc))
	if err != nil {
		return nil, fmt.Errorf("status server at %s: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status server at %s answered %s", addr, resp.Status)
	}
	if !json.Valid(body) {
		return nil, fmt.Errorf("%s did not answer with a JSON document: is it a connet status address?", addr)
	}
	return body, nil
}

// maxStatusDoc bounds what is read: a client with thousands of peers
// stays far below it.
const maxStatusDoc = 64 << 20

// statusKind says whose document doc is: its kind field, or for a
// document without one, its shape.
func statusKind(doc []byte) (string, error) {
	var probe struct {
		Kind       string          `json:"kind"`
		DirectAddr *string         `json:"direct_addr"`
		Control    json.RawMessage `json:"control"`
		Clients    json.RawMessage `json:"clients"`
	}
	if err := json.NewDecoder(bytes.NewReader(doc)).Decode(&probe); err != nil {
		return "", fmt.Errorf("status document: %w", err)
	}
	switch {
	case probe.Kind != "":
		return probe.Kind, nil
	case probe.DirectAddr != nil:
		return "client", nil
	case probe.Clients != nil:
		return "relay", nil
	case probe.Control != nil:
		return "server", nil
	}
	return "", errors.New("status document of unknown shape (neither a client's, a server's nor a relay's)")
}
