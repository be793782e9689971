# What the four NixOS modules (client-module.nix, server-module.nix,
# control-server-module.nix, relay-server-module.nix) have in common: a
# `services.connet-<role>` with `enable`, `package` and `settings`, the
# TOML file connet reads (see the README's configuration reference), and a
# sandboxed systemd service running as a dynamic user.
#
# Files named in settings that hold secrets or that the dynamic user may
# not be allowed to read (tokens, TLS keys and certificates) are never
# copied into the Nix store: systemd hands each over as a credential
# (LoadCredential), and the generated TOML points at the credential.
{
  # client, server, control or relay
  role,
  # the top-level table of the TOML file for this role
  section,
  # arguments before --config: [ ] for the client, [ "server" ], ...
  subcommand,
  # "CacheDirectory" (client: reset key) or "StateDirectory" (servers)
  directory,
  # keys of the section naming such files
  fileKeys,
  # arrays of tables in the section whose cert-file/key-file are such files
  ingressKeys,
  # tables of tables (client endpoints) whose cas-file/cert-file/key-file are
  endpointKeys ? [ ],
  description,
}:
{
  config,
  lib,
  pkgs,
  ...
}:
let
  name = "connet-${role}";
  cfg = config.services.${name};
  toml = pkgs.formats.toml { };
  credDir = "/run/credentials/${name}.service";

  sectionSettings = cfg.settings.${section} or { };

  # [ { name; value; } ]: a credential for each file key that is set.
  topFiles = lib.concatMap (
    key:
    lib.optional (sectionSettings ? ${key}) {
      name = key;
      value = toString sectionSettings.${key};
    }
  ) fileKeys;
  ingressFiles = lib.concatMap (
    list:
    lib.concatLists (
      lib.imap0 (
        i: ingress:
        lib.concatMap (
          key:
          lib.optional (ingress ? ${key}) {
            name = "${list}-${toString i}-${key}";
            value = toString ingress.${key};
          }
        ) [ "cert-file" "key-file" ]
      ) (sectionSettings.${list} or [ ])
    )
  ) ingressKeys;

  endpointFileKeys = [
    "cas-file"
    "cert-file"
    "key-file"
  ];
  endpointFiles = lib.concatMap (
    kind:
    lib.concatLists (
      lib.mapAttrsToList (
        ep: epSettings:
        lib.concatMap (
          key:
          lib.optional (epSettings ? ${key}) {
            name = "${kind}-${ep}-${key}";
            value = toString epSettings.${key};
          }
        ) endpointFileKeys
      ) (sectionSettings.${kind} or { })
    )
  ) endpointKeys;

  # The settings with every such file replaced by its credential's path.
  rewritten =
    sectionSettings
    // lib.genAttrs (lib.filter (key: sectionSettings ? ${key}) fileKeys) (key: "${credDir}/${key}")
    // lib.genAttrs (lib.filter (list: sectionSettings ? ${list}) ingressKeys) (
      list:
      lib.imap0 (
        i: ingress:
        ingress
        // lib.genAttrs (lib.filter (key: ingress ? ${key}) [ "cert-file" "key-file" ]) (
          key: "${credDir}/${list}-${toString i}-${key}"
        )
      ) sectionSettings.${list}
    )
    // lib.genAttrs (lib.filter (kind: sectionSettings ? ${kind}) endpointKeys) (
      kind:
      lib.mapAttrs (
        ep: epSettings:
        epSettings
        // lib.genAttrs (lib.filter (key: epSettings ? ${key}) endpointFileKeys) (
          key: "${credDir}/${kind}-${ep}-${key}"
        )
      ) sectionSettings.${kind}
    );
  configFile = toml.generate "${name}.toml" (cfg.settings // { ${section} = rewritten; });

  inlineSecrets = lib.filter (key: sectionSettings ? ${key}) [
    "token"
    "tokens"
    "clients-tokens"
    "relays-tokens"
    "direct-stateless-reset-key"
  ];
in
{
  options.services.${name} = {
    enable = lib.mkEnableOption "the connet ${role} (${description})";
    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage <connet>/nix/package.nix { }";
      description = "The connet package to run.";
    };
    settings = lib.mkOption {
      type = toml.type;
      default = { };
      example = lib.literalExpression ''
        {
          log-level = "info";
          ${section} = { /* the keys of the [${section}] table */ };
        }
      '';
      description = ''
        The connet configuration file, as in the README's configuration
        reference: root keys (log-level, log-format) and the [${section}]
        table. Give files (${lib.concatStringsSep ", " (
          fileKeys
          ++ map (k: "${k}[].cert-file/key-file") ingressKeys
          ++ map (k: "${k}.<name>.cas-file/cert-file/key-file") endpointKeys
        )})
        as strings of absolute paths outside the store: they are passed to
        the service as systemd credentials. Inline secrets would end up in
        the world-readable store; use the -file keys.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    # quic-go asks for 7 MiB UDP socket buffers; an unprivileged service
    # gets at most these limits (the README's Tuning section).
    boot.kernel.sysctl = {
      "net.core.rmem_max" = lib.mkDefault 7500000;
      "net.core.wmem_max" = lib.mkDefault 7500000;
    };

    warnings = map (
      key:
      "services.${name}.settings.${section}.${key} is written to the world-readable Nix store; use the file variant instead."
    ) inlineSecrets;

    systemd.services.${name} = {
      description = "connet ${role}: ${description}";
      documentation = [ "https://github.com/p2pconnet/connet#readme" ];
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      serviceConfig = {
        Type = "exec";
        ExecStart = lib.escapeShellArgs (
          [ (lib.getExe cfg.package) ] ++ subcommand ++ [ "--config" "${configFile}" ]
        );
        Restart = "on-failure";
        RestartSec = "5s";
        DynamicUser = true;
        ${directory} = name;
        LoadCredential = map (f: "${f.name}:${f.value}") (topFiles ++ ingressFiles ++ endpointFiles);

        # The same sandbox as packaging/systemd/*.service.
        NoNewPrivileges = true;
        CapabilityBoundingSet = "";
        AmbientCapabilities = "";
        ProtectSystem = "strict";
        ProtectHome = if role == "client" then "read-only" else true;
        PrivateTmp = true;
        PrivateDevices = true;
        PrivateUsers = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectProc = "invisible";
        ProcSubset = "pid";
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
          "AF_NETLINK"
        ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RemoveIPC = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
        ];
        SystemCallErrorNumber = "EPERM";
        UMask = "0077";
        LimitNOFILE = 65536;
      };
    };
  };
}
