{
  description = "connet: a peer-to-peer reverse proxy";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      version = self.shortRev or self.dirtyShortRev or "dev";
      modules = {
        client = ./nix/client-module.nix;
        server = ./nix/server-module.nix;
        control = ./nix/control-server-module.nix;
        relay = ./nix/relay-server-module.nix;
      };
    in
    {
      packages = forAllSystems (pkgs: rec {
        connet = pkgs.callPackage ./nix/package.nix { inherit version; };
        default = connet;
      });

      # All four services (each off until enabled), running this flake's
      # build unless a package is given.
      nixosModules = modules // {
        default =
          { lib, pkgs, ... }:
          {
            imports = builtins.attrValues modules;
            config.services = lib.genAttrs [
              "connet-client"
              "connet-server"
              "connet-control"
              "connet-relay"
            ] (_: { package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default; });
          };
      };
    };
}
