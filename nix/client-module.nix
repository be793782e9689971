# NixOS module: services.connet-client runs `connet --config <settings>`.
import ./service.nix {
  role = "client";
  section = "client";
  subcommand = [ ];
  directory = "CacheDirectory";
  fileKeys = [
    "token-file"
    "server-cas-file"
    "direct-stateless-reset-key-file"
  ];
  ingressKeys = [ ];
  endpointKeys = [
    "destinations"
    "sources"
  ];
  description = "destinations and sources of a peer-to-peer reverse proxy";
}
