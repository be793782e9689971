# NixOS module: services.connet-control runs `connet control --config <settings>`:
# a control server alone, that relays join.
import ./service.nix {
  role = "control";
  section = "control";
  subcommand = [ "control" ];
  directory = "StateDirectory";
  fileKeys = [
    "clients-tokens-file"
    "relays-tokens-file"
  ];
  ingressKeys = [
    "clients-ingress"
    "relays-ingress"
  ];
  description = "control server of a peer-to-peer reverse proxy";
}
