package main

import (
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/p2pconnet/connet"
	"github.com/p2pconnet/connet/internal/config"
	"github.com/p2pconnet/connet/internal/store"
)

// clientOptions are the options of a client with settings cs, logging to
// log.
func clientOptions(cs config.ClientSettings, log *slog.Logger) []connet.ClientOption {
	opts := []connet.ClientOption{
		connet.ClientToken(cs.Token),
		connet.ClientMetadata(cs.Metadata),
		connet.ClientControlAddress(cs.ServerAddr),
		connet.ClientControlServerName(cs.ServerName),
		connet.ClientDirectAddress(cs.DirectAddr),
		connet.ClientHandshakeIdleTimeout(cs.HandshakeIdleTimeout),
		connet.ClientNatPMP(cs.NatPMP),
		connet.ClientBuildVersion(buildVersion()),
		connet.ClientRelayEncryptions(cs.RelayEncryptions...),
		connet.ClientLogger(log),
		connet.ClientTCPFallback(cs.Fallback.Addr),
		connet.ClientFallbackTransports(fallbacks(cs.Fallback)...),
		connet.ClientQUICRetry(cs.Fallback.QUICRetry),
		connet.ClientMaxPendingStreams(cs.MaxPendingStreams),
		connet.ClientBirthdayPunch(cs.BirthdayPunch == config.BirthdayPunchEnabled),
	}
	if cs.ServerCAs != nil {
		opts = append(opts, connet.ClientControlCAs(cs.ServerCAs))
	}
	if cs.StatusAddr != "" {
		opts = append(opts, connet.ClientStatusAddress(cs.StatusAddr))
	}
	if key := resetKey(cs, log); key != nil {
		opts = append(opts, connet.ClientDirectStatelessResetKey(*key))
	}
	return opts
}

// resetKey returns the configured stateless reset key, else one kept in the
// cache directory (named after the direct address, so several clients on a
// host keep theirs apart), else nil for an ephemeral key, with a warning:
// peers then cannot be told of a restart and notice it only by timeout.
func resetKey(cs config.ClientSettings, log *slog.Logger) *[32]byte {
	if cs.StatelessResetKey != nil {
		return cs.StatelessResetKey
	}
	if cs.ResetKeyCacheDir == "" {
		log.Warn("no cache directory ($CONNET_CACHE_DIR, $CACHE_DIRECTORY, $XDG_CACHE_HOME or $HOME): using an ephemeral stateless reset key")
		return nil
	}
	key, err := store.LoadOrCreateKey(resetKeyFile(cs.ResetKeyCacheDir, cs.DirectAddr))
	if err != nil {
		log.Warn("cannot keep a stateless reset key, using an ephemeral one", "err", err)
		return nil
	}
	return &key
}

// resetKeyFile is where the generated key of the client at directAddr is
// kept: directly in the cache directory, which is connet's own already.
func resetKeyFile(cacheDir, directAddr string) string {
	name := "stateless-reset-" + strings.NewReplacer(":", "_", "/", "_", "[", "", "]", "").Replace(directAddr) + ".key"
	return filepath.Join(cacheDir, name)
}

// fallbacks lists the transports a client falls back to, in order.
func fallbacks(t config.ClientTransports) []connet.Transport {
	var out []connet.Transport
	if t.TCP {
		out = append(out, connet.TransportTCP)
	}
	if t.WSS {
		out = append(out, connet.TransportWSS)
	}
	return out
}
