# Evaluates the four NixOS modules with sample settings, against a small
# stand-in for the parts of nixpkgs they use (nixpkgs itself cannot be
# fetched where the checks run). toml.generate returns the settings as
# JSON behind "/toml:" so the check can read the file the service gets;
# escapeShellArgs returns the argument list as JSON.
let
  lib = rec {
    mkEnableOption = d: { description = d; };
    mkOption = o: o;
    types.package = "package";
    literalExpression = t: t;
    mkIf = condition: content: { inherit condition content; };
    mkDefault = v: { default = v; };
    optional = c: x: if c then [ x ] else [ ];
    concatMap = f: l: builtins.concatLists (map f l);
    concatLists = builtins.concatLists;
    imap0 = f: l: builtins.genList (i: f i (builtins.elemAt l i)) (builtins.length l);
    genAttrs =
      names: f:
      builtins.listToAttrs (
        map (n: {
          name = n;
          value = f n;
        }) names
      );
    filter = builtins.filter;
    concatStringsSep = builtins.concatStringsSep;
    mapAttrs = builtins.mapAttrs;
    mapAttrsToList = f: a: map (n: f n a.${n}) (builtins.attrNames a);
    escapeShellArgs = builtins.toJSON;
    getExe = p: "${p}/bin/connet";
  };
  pkgs = {
    formats.toml = _: {
      type = "toml";
      generate = name: value: "/toml:" + builtins.toJSON value;
    };
    callPackage = _: _: "/pkg";
  };
  eval =
    file: name: settings:
    let
      module = import file;
      result = module {
        inherit lib pkgs;
        config.services.${name} = {
          enable = true;
          package = "/pkg";
          inherit settings;
        };
      };
    in
    {
      inherit (result.config) condition;
      warnings = result.config.content.warnings;
      sysctl = result.config.content.boot.kernel.sysctl;
      service = result.config.content.systemd.services.${name};
      options = builtins.attrNames result.options.services.${name};
    };
  # package.nix with a buildGoModule that returns its arguments.
  packageArgs = import ../package.nix {
    lib.cleanSource = p: toString p;
    buildGoModule = args: args;
    version = "v1.2.3";
  };

  # flake.nix's outputs with a stand-in nixpkgs and self.
  flake = (import ../../flake.nix).outputs {
    self = flake // {
      shortRev = "abc1234";
    };
    nixpkgs = {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ] (system: {
        callPackage = file: args: {
          inherit system;
          file = toString file;
          inherit (args) version;
        };
      });
    };
  };
  defaultModule = flake.nixosModules.default {
    lib = lib // {
      mkDefault = v: { default = v; };
    };
    pkgs.stdenv.hostPlatform.system = "aarch64-linux";
  };
in
{
  package = {
    inherit (packageArgs) pname version subPackages ldflags vendorHash;
    cgo = packageArgs.env.CGO_ENABLED;
    src = packageArgs.src;
  };
  flake = {
    packages = builtins.mapAttrs (_: p: p.default) flake.packages;
    modules = builtins.attrNames flake.nixosModules;
    defaultImports = map toString defaultModule.imports;
    defaultPackages = builtins.mapAttrs (_: s: s.package) defaultModule.config.services;
  };
  client = eval ../client-module.nix "connet-client" {
    log-level = "debug";
    client = {
      token-file = "/run/keys/connet.token";
      server-addr = "localhost:19190";
      sources.example.url = "tcp://:9000";
      sources.web = {
        url = "https://:8443";
        cert-file = "/etc/web/cert.pem";
        key-file = "/etc/web/key.pem";
      };
    };
  };
  server = eval ../server-module.nix "connet-server" {
    server = {
      tokens-file = "/run/keys/tokens";
      ingress = [
        {
          addr = ":19190";
          cert-file = "/var/lib/acme/x/cert.pem";
          key-file = "/var/lib/acme/x/key.pem";
        }
      ];
      relay-ingress = [ { hostports = [ "relay.example.com:19191" ]; } ];
    };
  };
  control = eval ../control-server-module.nix "connet-control" {
    control = {
      clients-tokens = [ "inline" ];
      relays-tokens-file = "/run/keys/relays";
    };
  };
  relay = eval ../relay-server-module.nix "connet-relay" {
    relay = {
      token-file = "/run/keys/relay";
      control-addr = "control.example.com:19189";
    };
  };
}
