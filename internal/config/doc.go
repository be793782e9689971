// Package config loads, merges and validates connet's TOML configuration.
//
// Scope: this package turns one or more TOML files (plus values coming from
// command line flags) into typed, validated settings for the four roles the
// connet binary can play: client, server (control and relay in one process),
// control server and relay server. It does not open sockets, create
// directories or start anything; the callers do that with the settings it
// returns.
//
// The flow is:
//
//  1. [Load] (or [Parse]) decodes each file strictly: syntax errors, unknown
//     keys and values of the wrong TOML type are rejected, naming the file and
//     the full dotted key (a syntax error also its line and column, with the
//     line shown by [Error.Excerpt]). A wrong key is left out and the rest
//     of its file still loaded, so that the next steps can report the other
//     mistakes in the same run. Files are merged in order with
//     [Config.Merge].
//  2. The command line layer overlays flag values with [Config.Merge], giving
//     each overlay an origin label such as "flag --dst-url". The origin of
//     every value is remembered so that later errors can say where a bad
//     value came from.
//  3. [Config.ClientSettings], [Config.ServerSettings],
//     [Config.ControlSettings], [Config.RelaySettings] and
//     [Config.LogSettings] apply defaults, read referenced files (tokens,
//     certificates, the endpoints' TLS files, with the functions endpoints
//     load them with at start: [LoadCAs], [LoadKeyPair]) and validate
//     everything, reporting all problems at once as [*Error] values joined
//     with [errors.Join].
//
// The environment is always injected as a function (usually [os.Getenv]) so
// that nothing in this package depends on process-global state. Relative
// file paths in the configuration (token-file, cert-file, ...) are used as
// written, that is relative to the working directory, the same as paths given
// as flags.
package config
